package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synapse-p2p/synapse-p2p/examples/upgrades"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// cmdWasm is the package author's tool: wasm info, wasm run and wasm build.
func cmdWasm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("want: wasm info PKG.wasm | wasm run PKG.wasm --state STATE.json [--out FILE] | wasm state [--out FILE] | wasm build EXAMPLE [--out DIR]")
	}
	switch args[0] {
	case "info":
		return cmdWasmInfo(ctx, args[1:], stdout, stderr)
	case "run":
		return cmdWasmRun(ctx, args[1:], stdout, stderr)
	case "state":
		return cmdWasmState(ctx, args[1:], stdout, stderr)
	case "build":
		return cmdWasmBuild(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, "Usage: synapse-p2p wasm info PKG.wasm [--json]")
		fmt.Fprintln(stderr, "       synapse-p2p wasm run PKG.wasm --state STATE.json [--out FILE] [--version V]")
		fmt.Fprintln(stderr, "       synapse-p2p wasm state [--api ADDR] [--out FILE]   (a node's current network state, for wasm run)")
		fmt.Fprintln(stderr, "       synapse-p2p wasm build EXAMPLE [--out DIR]   (examples: "+strings.Join(upgrades.Examples, ", ")+
			"; Go ones are built with your Go toolchain, -rs ones written from their committed .wasm)")
		return nil
	}
	return usagef("unknown wasm subcommand %q (want info, run, state or build)", args[0])
}

// cmdWasmState fetches a running node's current network state (GET /state)
// as the JSON document wasm run takes.
func cmdWasmState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wasm state", "[--api ADDR] [--out FILE]", stderr)
	api, token := apiFlags(fs)
	out := fs.String("out", "", "write the state here (default: stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var view httpapi.StateView
	if err := newClient(*api, *token).do(ctx, http.MethodGet, "/state", "", nil, &view); err != nil {
		return fmt.Errorf("GET /state: %w", err)
	}
	if len(view.State) == 0 {
		return errors.New("GET /state: the node returned no state")
	}
	doc := append(append([]byte{}, view.State...), '\n')
	if *out == "" {
		_, err := stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "network state at version %s (state_sha256 %s) written to %s\n", view.Version, view.StateHash, *out)
	return nil
}

// cmdWasmBuild writes one of the example packages — a Go one built with
// the Go toolchain, a Rust one from its committed .wasm — so a user can
// propose it without a checkout.
func cmdWasmBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wasm build", "EXAMPLE [--out DIR]", stderr)
	out := fs.String("out", ".", "directory for EXAMPLE.wasm")
	name, rest := splitArgs(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if name == "" || fs.NArg() > 0 {
		return usagef("want one example name (%s)", strings.Join(upgrades.Examples, ", "))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	path, err := examplebuild.Build(ctx, name, *out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// sandboxFlags are the limits shared by info and run (the executor's defaults).
type sandboxFlags struct {
	memoryMiB, outputMiB *uint64
	timeout              *time.Duration
	inProcess            *bool
	cache                *string
}

func addSandboxFlags(fs interface {
	Uint64(string, uint64, string) *uint64
	Duration(string, time.Duration, string) *time.Duration
	Bool(string, bool, string) *bool
	String(string, string, string) *string
}) sandboxFlags {
	d := upgrade.DefaultConfig()
	cache := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(dir, "synapse-p2p", "wasm-cache")
	}
	return sandboxFlags{
		cache:     fs.String("cache", cache, "compilation cache directory (\"\" for none)"),
		memoryMiB: fs.Uint64("memory", d.MemoryLimitBytes>>20, "cap on guest memory in MiB (the state's limits.memory_pages must fit)"),
		outputMiB: fs.Uint64("max-output", uint64(d.MaxOutputBytes>>20), "cap on output in MiB (the state's limits.max_output_bytes must fit)"),
		timeout:   fs.Duration("timeout", d.Timeout, "wall-clock safety net (the state's limits.fuel bounds the work)"),
		inProcess: fs.Bool("in-process", false, "run the guest in this process instead of a child process"),
	}
}

func (f sandboxFlags) config() upgrade.Config {
	c := upgrade.Config{MemoryLimitBytes: *f.memoryMiB << 20, MaxOutputBytes: int64(*f.outputMiB << 20),
		Timeout: *f.timeout, CompilationCacheDir: *f.cache}
	if *f.inProcess || !upgrade.ProcessIsolationAvailable() {
		c.Isolation = upgrade.IsolationInProcess
	}
	return c
}

// splitArgs moves the first non-flag argument out, so the package may come
// before or after the flags.
func splitArgs(args []string) (string, []string) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") && (i == 0 || !needsValue(args[i-1])) {
			return a, append(append([]string{}, args[:i]...), args[i+1:]...)
		}
	}
	return "", args
}

func needsValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch strings.TrimLeft(flag, "-") {
	case "state", "out", "version", "memory", "max-output", "timeout", "cache":
		return true
	}
	return false
}

func cmdWasmInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wasm info", "PKG.wasm [--json]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	sf := addSandboxFlags(fs)
	pkg, rest := splitArgs(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if pkg == "" || fs.NArg() > 0 {
		return usagef("want exactly one PKG.wasm")
	}
	info, err := upgrade.Inspect(ctx, sf.config(), pkg)
	if *asJSON && err == nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	if info.ABI != "" || len(info.Imports)+len(info.Exports) > 0 || info.Memory != nil {
		fmt.Fprintf(stdout, "abi:         %s\n", abiDescription(info.ABI))
		fmt.Fprintf(stdout, "imports:     %s\n", orDash(strings.Join(info.Imports, ", ")))
		fmt.Fprintf(stdout, "exports:     %s\n", orDash(strings.Join(info.Exports, ", ")))
		fmt.Fprintf(stdout, "memory:      %s\n", memoryDescription(info.Memory))
		if len(info.UpgradeInfo) > 0 {
			fmt.Fprintf(stdout, "version:     %s\n", orDash(info.Version))
			fmt.Fprintf(stdout, "description: %s\n", orDash(info.Description))
			fmt.Fprintf(stdout, "breaking:    %v\n", info.Breaking)
			fmt.Fprintf(stdout, "info:        %s\n", strings.TrimSpace(string(info.UpgradeInfo)))
		}
		if info.UpgradeInfoError != "" {
			fmt.Fprintf(stdout, "info:        unavailable: %s\n", info.UpgradeInfoError)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: the executor would reject this package: %w", pkg, err)
	}
	return nil
}

func abiDescription(abi string) string {
	switch abi {
	case upgrade.ABIReactor:
		return abi + " (exports memory, alloc, upgrade, get_upgrade_info)"
	case upgrade.ABICommand:
		return abi + " (WASI _start: state on stdin, new state on stdout)"
	}
	return orDash(abi)
}

// memoryDescription describes a module's memory declaration against the
// network's default limit.
func memoryDescription(m *upgrade.MemoryPages) string {
	if m == nil {
		return "none declared"
	}
	mib := func(pages uint32) string { return fmt.Sprintf("%.1f MiB", float64(pages)/16) }
	s := fmt.Sprintf("min %d pages (%s)", m.Min, mib(m.Min))
	if m.Max != nil {
		s += fmt.Sprintf(", max %d pages (%s)", *m.Max, mib(*m.Max))
	} else {
		s += ", no max"
	}
	if m.Imported {
		s += ", imported (refused by the sandbox)"
	}
	def := genesis.Limits{}.WithDefaults().MemoryPages
	return s + fmt.Sprintf("; the network's limits.memory_pages caps it (default %d pages, %s)", def, mib(def))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdWasmRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wasm run", "PKG.wasm --state STATE.json [--out FILE] [--version V]", stderr)
	statePath := fs.String("state", "", "network state JSON to upgrade (required)")
	out := fs.String("out", "", "write the new state here (default: stdout)")
	version := fs.String("version", "", "the entry's version: check that the output's global.version equals it (default: must raise the input's)")
	sf := addSandboxFlags(fs)
	pkg, rest := splitArgs(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if pkg == "" || fs.NArg() > 0 {
		return usagef("want exactly one PKG.wasm")
	}
	if *statePath == "" {
		return usagef("--state is required")
	}
	state, err := os.ReadFile(*statePath)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := upgrade.Run(ctx, sf.config(), pkg, state)
	if err != nil {
		if res.FuelUsed > 0 {
			return fmt.Errorf("%s: %w (fuel used %d of %d)", pkg, err, res.FuelUsed, res.Limits.Fuel)
		}
		return fmt.Errorf("%s: %w", pkg, err)
	}
	newState := res.Output
	oldV, newV := globalVersion(state), globalVersion(newState)
	want := *version
	if want == "" {
		want = newV
		if !genesis.ValidVersion(newV) || !genesis.ValidVersion(oldV) || genesis.CompareVersions(newV, oldV) <= 0 {
			return fmt.Errorf("%s: output global.version %q does not raise the input's %q (the executor would fail it)", pkg, newV, oldV)
		}
	}
	canon, sum, err := upgrade.ValidateOutput(newState, want)
	if err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	if *out == "" {
		fmt.Fprintln(stdout, string(canon))
	} else if err := os.WriteFile(*out, append(canon, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "upgraded %s -> %s in %v; fuel used %d of %d; state_sha256 %s\n", oldV, newV,
		time.Since(start).Round(time.Millisecond), res.FuelUsed, res.Limits.Fuel, sum)
	return nil
}

func globalVersion(state []byte) string {
	var doc struct {
		Global struct {
			Version string `json:"version"`
		} `json:"global"`
	}
	if err := json.Unmarshal(state, &doc); err != nil {
		return ""
	}
	return doc.Global.Version
}
