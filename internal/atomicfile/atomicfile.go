// Package atomicfile writes files so that a reader or a crash sees the old
// content or the new, never a torn file (DESIGN.md §7: temp + fsync +
// rename). Every file the node keeps outside badger — config.json, the
// identity key, the executor's state files, the package cache — is written
// through it.
//
// A write goes to a temporary file in the target's directory (named with
// TempPrefix, so a crash leaves only files RemoveTemps recognises), is
// fsynced, renamed (or, for WriteFileNew, hard-linked) into place, and the
// directory is fsynced so that the new name survives a crash too. Every
// error is returned; on an error before the file is in place the temporary
// file is removed and the old file, if any, is untouched.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TempPrefix starts the name of every temporary file this package creates.
const TempPrefix = ".tmp-"

// WriteFile replaces path with data, mode perm. When it returns nil the
// new content is durable; when it returns an error the file holds its old
// content (or does not exist, if it did not), except when only the final
// directory sync failed: the new content is in place but may not survive
// a crash.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// WriteFileNew creates path with data, mode perm, and fails with an error
// wrapping fs.ErrExist if path already exists (it never replaces a file:
// the identity key is written this way). The file appears whole or not at
// all.
func WriteFileNew(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, os.Link)
}

func write(path string, data []byte, perm fs.FileMode, place func(oldpath, newpath string) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.commit(place)
}

// File is a file being written that appears at its path only on Commit;
// for content that is streamed or checked before it may replace the old
// file (a downloaded package is verified first). Call Discard (deferred)
// on every path: it removes the temporary file unless Commit succeeded.
type File struct {
	tmp  *os.File
	path string
	perm fs.FileMode
	done bool
}

// Create starts writing path: it creates the temporary file in path's
// directory, which must exist.
func Create(path string, perm fs.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{tmp: tmp, path: path, perm: perm}, nil
}

// Write appends p to the file's new content.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.tmp.Write(p)
	if err != nil {
		err = fmt.Errorf("write %s: %w", f.path, err)
	}
	return n, err
}

// Commit sets the mode, fsyncs the new content, renames it over path and
// fsyncs the directory. Errors are as for WriteFile. After Commit, the File
// is done: Discard does nothing, Write fails.
func (f *File) Commit() error { return f.commit(os.Rename) }

// commit puts the synced temporary file in place with place (os.Rename to
// replace, os.Link to refuse an existing file).
func (f *File) commit(place func(oldpath, newpath string) error) error {
	if f.done {
		return fmt.Errorf("write %s: %w", f.path, fs.ErrClosed)
	}
	if err := f.finish(place); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

func (f *File) finish(place func(oldpath, newpath string) error) error {
	// Chmod, not the mode of an open(2): the result is perm whatever the
	// umask, as the node's files have always been.
	if err := f.tmp.Chmod(f.perm); err != nil {
		return err
	}
	if err := f.tmp.Sync(); err != nil {
		return err
	}
	if err := f.tmp.Close(); err != nil {
		return err
	}
	if err := place(f.tmp.Name(), f.path); err != nil {
		return err
	}
	f.done = true
	// After a link the temporary name is still there; after a rename this
	// fails with ErrNotExist, which is fine.
	if err := os.Remove(f.tmp.Name()); err != nil && !os.IsNotExist(err) {
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

// Discard abandons the write: it closes and removes the temporary file,
// leaving path as it was. It does nothing after a successful Commit, so it
// can be deferred right after Create.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.tmp.Close()
	os.Remove(f.tmp.Name())
}

// RemoveTemps deletes the temporary files a crash left in dir (names
// starting with TempPrefix). A missing dir is not an error.
func RemoveTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasPrefix(e.Name(), TempPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}
