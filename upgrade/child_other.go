//go:build !linux

package upgrade

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
