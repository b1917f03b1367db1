//go:build unix

package upgrade

import (
	"fmt"
	"runtime/debug"
	"syscall"
)

// limitChildMemory caps the sandbox child's data segment (RLIMIT_DATA:
// heap and other private writable mappings), so an allocation beyond it
// fails inside the child ("out of memory") rather than the OS OOM killer
// choosing a process. The Go heap is also told to collect harder before it
// gets there. Under the race detector, whose shadow memory alone exceeds
// any such limit, only the soft limit applies.
func limitChildMemory(n uint64) error {
	debug.SetMemoryLimit(int64(n / 10 * 8))
	if raceEnabled {
		return nil
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		return fmt.Errorf("setting the memory rlimit to %d bytes: %w", n, err)
	}
	return nil
}
