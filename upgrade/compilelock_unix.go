//go:build unix

package upgrade

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockCompile serialises compiling one module across processes that share
// a compilation cache (several nodes on one machine, as in simnet): the
// first compiles and fills the cache, the others wait and then load the
// compiled code instead of all compiling at once. The lock is an flock, so
// a killed child releases it. Failing to lock only costs a duplicate
// compile, so errors are ignored.
func lockCompile(cacheDir, sha string) (unlock func()) {
	if cacheDir == "" || sha == "" {
		return func() {}
	}
	f, err := os.OpenFile(filepath.Join(cacheDir, "compile-"+sha+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
