//go:build !unix

package upgrade

// lockCompile is a no-op where flock is unavailable: processes sharing a
// compilation cache may then compile the same module concurrently.
func lockCompile(cacheDir, sha string) (unlock func()) { return func() {} }
