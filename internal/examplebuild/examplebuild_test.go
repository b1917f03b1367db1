package examplebuild

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/examples/upgrades"
)

func TestBuildUnknown(t *testing.T) {
	_, err := Build(context.Background(), "no-such-example", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "unknown example") {
		t.Fatalf("err = %v, want unknown example", err)
	}
}

// A Rust example is its committed .wasm, written as it is.
func TestBuildRustWritesPrebuilt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out") // created by Build
	path, err := Build(context.Background(), "add-feature-flag-rs", dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "add-feature-flag-rs.wasm") {
		t.Fatalf("path %s", path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := upgrades.Prebuilt("add-feature-flag-rs")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("written bytes differ from the committed .wasm")
	}
}

// A Go example is built with the Go toolchain into a wasm module.
func TestBuildGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with the Go toolchain")
	}
	path, err := Build(context.Background(), "add-feature-flag", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("%s is not a wasm module", path)
	}
}
