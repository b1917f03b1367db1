//go:build linux

package upgrade

import "syscall"

// childProcAttr kills the sandbox child when the node dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
