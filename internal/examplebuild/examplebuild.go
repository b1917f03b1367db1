// Package examplebuild turns the example upgrade packages
// (examples/upgrades) into .wasm files, for `synapse-p2p wasm build`, the
// simnet demo and tests. It is development tooling: the executor (upgrade/)
// never builds anything, it runs the bytes a proposal names.
package examplebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/synapse-p2p/synapse-p2p/examples/upgrades"
)

// Build writes the example package name (one of upgrades.Examples) into
// outDir as name.wasm and returns its path. A Go example is built with the
// Go toolchain (GOOS=wasip1 GOARCH=wasm) from the embedded sources in a
// temporary directory, so it works from any working directory; it needs
// the go command on PATH (or in GOROOT). A Rust example (name ending in
// -rs) is not compiled here: its committed .wasm, which
// scripts/build-rust-guests.sh reproduces with Debian's Rust toolchain, is
// written as it is.
func Build(ctx context.Context, name, outDir string) (string, error) {
	if !slices.Contains(upgrades.Examples, name) {
		return "", fmt.Errorf("examplebuild: unknown example %q (have %v)", name, upgrades.Examples)
	}
	if upgrades.Rust(name) {
		return writePrebuilt(name, outDir)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goCmd); serr != nil {
			return "", errors.New("examplebuild: building examples needs the go command (not on PATH)")
		}
	}
	src, err := os.MkdirTemp("", "synapse-example-*")
	if err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	defer os.RemoveAll(src)
	gomod := "module " + upgrades.ModulePath + "\n\ngo 1.24\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	for _, dir := range []string{"abi", name} {
		err := fs.WalkDir(upgrades.Sources, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			dst := filepath.Join(src, filepath.FromSlash(p))
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			b, err := fs.ReadFile(upgrades.Sources, p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			return "", fmt.Errorf("examplebuild: example sources: %w", err)
		}
	}
	out, err := outPath(outDir, name)
	if err != nil {
		return "", err
	}
	args := []string{"build", "-trimpath", "-o", out}
	if !upgrades.Command(name) {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, "./"+name)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("examplebuild: building example %s: %v: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// writePrebuilt writes the committed .wasm of a Rust example to outDir.
func writePrebuilt(name, outDir string) (string, error) {
	b, err := upgrades.Prebuilt(name)
	if err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	out, err := outPath(outDir, name)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	return out, nil
}

// outPath creates outDir and returns the absolute path of name's .wasm in it.
func outPath(outDir, name string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	out, err := filepath.Abs(filepath.Join(outDir, name+".wasm"))
	if err != nil {
		return "", fmt.Errorf("examplebuild: %w", err)
	}
	return out, nil
}
