//go:build !unix

package upgrade

import "runtime/debug"

// limitChildMemory sets only Go's soft memory limit where there is no
// setrlimit.
func limitChildMemory(n uint64) error {
	debug.SetMemoryLimit(int64(n / 10 * 8))
	return nil
}
