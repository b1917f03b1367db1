//go:build !windows

package atomicfile

import "os"

// SyncDir fsyncs the directory dir so that a rename, link or removal in it
// survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
