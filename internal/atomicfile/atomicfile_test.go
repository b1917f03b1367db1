package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// noTemps fails the test if dir holds a temporary file.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

// oldFile creates a file name holding "old" in a new directory.
func oldFile(t *testing.T, name string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// wantContent fails the test unless path holds want.
func wantContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("%s holds %q, want %q", path, b, want)
	}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFile(t *testing.T) {
	cases := []struct {
		name string
		old  string // "" = no file before
		data string
		perm fs.FileMode
	}{
		{"create", "", "new", 0o644},
		{"replace", "old content that is longer", "new", 0o644},
		{"private", "", "secret", 0o600},
		{"empty", "old", "", 0o640},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if c.old != "" {
				if err := os.WriteFile(path, []byte(c.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte(c.data), c.perm); err != nil {
				t.Fatal(err)
			}
			wantContent(t, path, c.data)
			if runtime.GOOS != "windows" {
				if got := mode(t, path); got != c.perm {
					t.Fatalf("mode %v, want %v", got, c.perm)
				}
			}
			noTemps(t, dir)
		})
	}
}

// The mode is exactly perm, whatever the process umask would have allowed.
func TestWriteFileModeIgnoresUmask(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, path); got != 0o666 {
		t.Fatalf("mode %v, want 0666", got)
	}
}

func TestWriteFileErrors(t *testing.T) {
	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "f")
		err := WriteFile(path, []byte("x"), 0o644)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want ErrNotExist naming %s", err, path)
		}
	})
	t.Run("rename fails keeps old file", func(t *testing.T) {
		// A directory at the target: the rename fails after the temporary
		// file was written and synced.
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "keep"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(path, []byte("new"), 0o644); err == nil {
			t.Fatal("replaced a non-empty directory")
		}
		wantContent(t, filepath.Join(path, "keep"), "old")
		noTemps(t, dir)
	})
	t.Run("read-only directory", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("needs unix permissions enforced (not root)")
		}
		dir, path := oldFile(t, "f")
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		if err := WriteFile(path, []byte("new"), 0o644); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("err = %v, want ErrPermission", err)
		}
		wantContent(t, path, "old")
		noTemps(t, dir)
	})
}

func TestWriteFileNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	if err := WriteFileNew(path, []byte("key1"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantContent(t, path, "key1")
	if runtime.GOOS != "windows" {
		if got := mode(t, path); got != 0o600 {
			t.Fatalf("mode %v, want 0600", got)
		}
	}
	err := WriteFileNew(path, []byte("key2"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: err = %v, want ErrExist", err)
	}
	wantContent(t, path, "key1")
	noTemps(t, dir)
}

func TestFileDiscard(t *testing.T) {
	dir, path := oldFile(t, "pkg.wasm")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("unverified")); err != nil {
		t.Fatal(err)
	}
	f.Discard()
	f.Discard() // twice is fine
	wantContent(t, path, "old")
	noTemps(t, dir)
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Discard succeeded")
	}
}

func TestFileCommitStreamed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pkg.wasm")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	for _, s := range []string{"a", "b", "c"} {
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file visible before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Discard() // no-op after Commit
	wantContent(t, path, "abc")
	if err := f.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	noTemps(t, dir)
}

// RemoveTemps clears what a crash between Create and Commit leaves, and
// nothing else.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644) // "crash": never committed nor discarded
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("torn")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	noTemps(t, dir)
	wantContent(t, path, "kept")
	if err := RemoveTemps(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
}
