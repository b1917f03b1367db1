package upgrade

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storeFiles reads every file of the state store (caches excluded).
func storeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == cacheDir || rel == wasmCache {
				return filepath.SkipDir
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		files[rel] = string(b)
		return nil
	})
	return files
}

func TestDryRunChangesNothing(t *testing.T) {
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	before := storeFiles(t, m.dir)
	r, err := m.Test(context.Background(), pkgFor(t, srv, "add-feature-flag", "1.2.0"))
	if err != nil || !r.Success || r.StateSHA256 == "" || r.Module.ABI != ABIReactor {
		t.Fatalf("%+v %v", r, err)
	}
	diff := strings.Join(r.Diff, "\n")
	if !strings.Contains(diff, `~ global.version: "1.0.0" -> "1.2.0"`) || !strings.Contains(diff, "new_feature_enabled = true") {
		t.Fatalf("diff:\n%s", diff)
	}
	// A failing dry run is a result, not an error.
	bad, err := m.Test(context.Background(), pkgFor(t, srv, "hostile-nonjson", "2.0.0"))
	if err != nil || bad.Success || bad.ErrorClass != ClassInvalidOutput {
		t.Fatalf("%+v %v", bad, err)
	}
	after := storeFiles(t, m.dir)
	if len(before) != len(after) {
		t.Fatalf("files changed: %v -> %v", keys(before), keys(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
	if m.LastExecutedSeq() != 0 || len(m.History()) != 0 {
		t.Fatal("dry run recorded")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCommandABI(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: pkgFor(t, srv, "command-feature-flag", "1.3.0")})
	if err != nil || !r.Success || r.Version != "1.3.0" {
		t.Fatalf("%+v %v", r, err)
	}
	_, st, _ := m.State()
	if globalOf(t, st)["command_abi"] != true {
		t.Fatal("command_abi not set")
	}
	info, err := Inspect(context.Background(), Config{CompilationCacheDir: sharedWasmCache}, example(t, "command-feature-flag"))
	if err != nil || info.ABI != ABICommand || !strings.Contains(string(info.UpgradeInfo), `"1.3.0"`) {
		t.Fatalf("%+v %v", info, err)
	}
}

// The output must keep governance readable and carry the entry's version.
func TestOutputValidation(t *testing.T) {
	good := genesisState(t, 1)
	if _, _, err := ValidateOutput(good, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ out, version string }{
		"array":         {`[1]`, "1.0.0"},
		"wrong version": {string(good), "1.2.0"},
		"no governance": {`{"global":{"version":"1.0.0","validators":["x"]}}`, "1.0.0"},
		"trailing":      {string(good) + "{}", "1.0.0"},
		"trailing }":    {string(good) + "}", "1.0.0"}, // genesis.Canonical took it before
		"trailing ]":    {string(good) + " ]", "1.0.0"},
		"empty":         {``, "1.0.0"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ValidateOutput([]byte(tc.out), tc.version); classOf(err) != ClassInvalidOutput {
				t.Errorf("err = %v, want class %s", err, ClassInvalidOutput)
			}
		})
	}
}

func FuzzValidateOutput(f *testing.F) {
	f.Add([]byte(`{"global":{"version":"1.0.0"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		canon, _, err := ValidateOutput(b, "1.0.0")
		if err == nil && stateVersion(canon) != "1.0.0" {
			t.Fatal("accepted a wrong version")
		}
	})
}

// A second compile of the same module loads it from the on-disk cache.
func TestCompilationCache(t *testing.T) {
	// A tiny module keeps the cold compile cheap under -race:
	// (module (func (result i32) i32.const 42))
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 5, 1, 0x60, 0, 1, 0x7f, // type: () -> i32
		3, 2, 1, 0, // func 0 has type 0
		10, 6, 1, 4, 0, 0x41, 42, 0x0b, // code: i32.const 42
	}
	dir := t.TempDir()
	ctx := context.Background()
	compile := func() time.Duration {
		e, err := newEngine(ctx, dir, limits{}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer e.close(ctx)
		t0 := time.Now()
		cm, err := e.r.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		cm.Close(ctx)
		return time.Since(t0)
	}
	cold := compile()
	files := storeFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("nothing cached")
	}
	warm := compile()
	if again := storeFiles(t, dir); len(again) != len(files) {
		t.Fatalf("second compile wrote new cache entries: %d -> %d", len(files), len(again))
	}
	t.Logf("cold %v, cached %v", cold, warm)
	if warm > cold*2 {
		t.Fatalf("cached compile (%v) slower than cold (%v)", warm, cold)
	}
}

func TestConfigAndInit(t *testing.T) {
	if _, err := New(context.Background(), Config{}, Deps{}); err == nil {
		t.Fatal("empty data dir accepted")
	}
	if _, err := New(context.Background(), Config{DataDir: t.TempDir(), Timeout: -1}, Deps{}); err == nil {
		t.Fatal("negative timeout accepted")
	}
	m := newManager(t, "", nil, Deps{})
	if _, err := m.Execute(context.Background(), Entry{Seq: 1}); err != errNoState {
		t.Fatalf("execute without state: %v", err)
	}
	st := genesisState(t, 1)
	if err := m.InitState("1.1.0", st); err == nil {
		t.Fatal("version mismatch accepted")
	}
	if err := m.InitState("1.0.0", []byte(`{"global":{"version":"1.0.0"}}`)); err == nil {
		t.Fatal("state without governance accepted")
	}
	if err := m.InitState("1.0.0", st); err != nil {
		t.Fatal(err)
	}
	_, _, sum := m.State()
	if err := m.InitState("1.0.0", []byte(`{}`)); err != nil {
		t.Fatal("second InitState is not a no-op")
	}
	if _, _, s2 := m.State(); s2 != sum {
		t.Fatal("state replaced")
	}
	m.Close(context.Background())
	m.Close(context.Background())
	if _, err := m.Execute(context.Background(), Entry{Seq: 1}); err == nil {
		t.Fatal("execute after close")
	}
}
