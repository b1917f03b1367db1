package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

func wasmCLI(args ...string) (error, string, string) {
	var out, errb bytes.Buffer
	err := cmdWasm(context.Background(), args, &out, &errb)
	return err, out.String(), errb.String()
}

func TestWasmCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	flag, err := examplebuild.Build(ctx, "add-feature-flag", dir)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := examplebuild.Build(ctx, "hostile-import", dir)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(k)
	g, err := genesis.Devnet("cli", []peer.ID{id}, 1, 60)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := g.InitialState()
	statePath := filepath.Join(dir, "state.json")
	os.WriteFile(statePath, st, 0o644)

	err, out, _ := wasmCLI("info", flag, "--in-process")
	if err != nil || !strings.Contains(out, "abi:         reactor") || !strings.Contains(out, `"version":"1.2.0"`) ||
		!strings.Contains(out, "wasi_snapshot_preview1.fd_write") {
		t.Fatalf("info: %v\n%s", err, out)
	}
	err, out, _ = wasmCLI("info", "--in-process", evil)
	if err == nil || !strings.Contains(err.Error(), "forbidden import env.evil") || !strings.Contains(out, "env.evil") {
		t.Fatalf("info of a bad module: %v\n%s", err, out)
	}
	outPath := filepath.Join(dir, "new.json")
	err, _, stderr := wasmCLI("run", flag, "--state", statePath, "--out", outPath, "--in-process")
	if err != nil || !strings.Contains(stderr, "upgraded 1.0.0 -> 1.2.0") || !strings.Contains(stderr, "fuel used ") ||
		!strings.Contains(stderr, fmt.Sprintf(" of %d;", genesis.DefaultFuel)) {
		t.Fatalf("run: %v %s", err, stderr)
	}
	b, _ := os.ReadFile(outPath)
	if !bytes.Contains(b, []byte(`"new_feature_enabled":true`)) {
		t.Fatalf("output %s", b)
	}
	if err, _, _ := wasmCLI("run", flag, "--state", statePath, "--version", "2.0.0", "--in-process"); err == nil ||
		!strings.Contains(err.Error(), `global.version is "1.2.0", the entry's version is "2.0.0"`) {
		t.Fatalf("version check: %v", err)
	}
	if err, _, _ := wasmCLI("run", flag, "--in-process"); err == nil || !strings.Contains(err.Error(), "--state is required") {
		t.Fatalf("missing state: %v", err)
	}
	if err, _, _ := wasmCLI("frobnicate"); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
}

// wasm info describes packages of either language and ABI: the ABI kind,
// exports, imports, the module's memory declaration and the declared
// version and description.
func TestWasmInfoBothLanguages(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cases := []struct {
		example string
		want    []string
	}{
		{"add-feature-flag", []string{"abi:         reactor", "exports:     _initialize, alloc, get_upgrade_info, memory (memory), upgrade",
			"memory:      min ", " pages (", "MiB), no max", "version:     1.2.0", "description: enable new_feature_enabled on every node", "breaking:    false"}},
		{"add-feature-flag-rs", []string{"abi:         reactor", "imports:     wasi_snapshot_preview1.fd_write\n",
			"exports:     alloc, get_upgrade_info, memory (memory), upgrade\n", "memory:      min 17 pages (1.1 MiB), no max",
			"version:     1.2.0", "description: enable new_feature_enabled on every node"}},
		{"command-feature-flag", []string{"abi:         command", "exports:     _start, memory (memory)",
			"version:     1.3.0", "description: set global.command_abi"}},
		{"command-feature-flag-rs", []string{"abi:         command", "_start", "wasi_snapshot_preview1.fd_read",
			"memory:      min 17 pages", "version:     1.3.0", "description: set global.command_abi"}},
	}
	for _, c := range cases {
		t.Run(c.example, func(t *testing.T) {
			path, err := examplebuild.Build(ctx, c.example, dir)
			if err != nil {
				t.Fatal(err)
			}
			err, out, _ := wasmCLI("info", path, "--in-process")
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.example, err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: output lacks %q:\n%s", c.example, w, out)
				}
			}
			err, out, _ = wasmCLI("info", path, "--in-process", "--json")
			var info upgrade.ModuleInfo
			if err != nil || json.Unmarshal([]byte(out), &info) != nil || info.Memory == nil || info.Memory.Min == 0 ||
				info.Version == "" || info.Description == "" || info.ABI == "" {
				t.Errorf("%s --json: %v\n%s", c.example, err, out)
			}
		})
	}
}
