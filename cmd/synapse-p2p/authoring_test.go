package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// TestAuthoringScripts runs the shell scripts that docs/authoring.md shows
// (examples/upgrades/authoring/*.sh) as a package author would: with a
// synapse-p2p command on PATH (this test binary) against a real daemon.
func TestAuthoringScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nSYNAPSE_TEST_MAIN=1 exec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "synapse-p2p"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "node")
	if code, _, stderr := cli(t, "init", "--data", data); code != 0 {
		t.Fatal(stderr)
	}
	d := startDaemon(t, data, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	api := strings.TrimPrefix(d.api, "http://")
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := examplebuild.Build(ctx, "add-feature-flag-rs", work); err != nil {
		t.Fatal(err)
	}
	run := func(dir, script string, env ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, sh, filepath.Join(repo, "examples", "upgrades", "authoring", script))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "API=" + api}, env...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out.String())
		}
		return out.String()
	}

	out := run(work, "try-locally.sh")
	for _, want := range []string{"abi:         reactor", "version:     1.2.0", "memory:      min 17 pages",
		"network state at version 1.0.0", "upgraded 1.0.0 -> 1.2.0", "fuel used "} {
		if !strings.Contains(out, want) {
			t.Errorf("try-locally.sh output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, "new.json")); err != nil || !bytes.Contains(b, []byte(`"new_feature_enabled":true`)) {
		t.Errorf("new.json: %v %.300s", err, b)
	}

	out = run(work, "publish.sh")
	for _, want := range []string{`"url": "ipfs://`, `"sha256": "sha256:`, `"success": true`, `new_feature_enabled = true`} {
		if !strings.Contains(out, want) {
			t.Errorf("publish.sh output lacks %q:\n%s", want, out)
		}
	}

	built := t.TempDir()
	run(repo, "build-go.sh", "OUT="+built)
	for _, name := range []string{"add-feature-flag", "command-feature-flag"} {
		info, err := upgrade.Inspect(ctx, upgrade.Config{Isolation: upgrade.IsolationInProcess}, filepath.Join(built, name+".wasm"))
		if err != nil || info.Version == "" {
			t.Errorf("build-go.sh built %s: %+v %v", name, info, err)
		}
	}
}
