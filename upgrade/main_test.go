package upgrade

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

var (
	exampleDir string
	// sharedWasmCache is one compilation cache for the test binary (and,
	// when possible, across runs): a cold compile of a Go guest takes
	// 6-15 s under -race on a small machine.
	sharedWasmCache string
)

// TestMain lets this test binary act as the sandbox child.
func TestMain(m *testing.M) {
	MaybeRunSandboxChild()
	dir, err := os.MkdirTemp("", "upgrade-examples-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exampleDir = dir
	sharedWasmCache = filepath.Join(dir, "wasm-cache")
	// Keep compiled modules across runs when there is a user cache dir:
	// wazero keys entries by module hash, wazero version and config.
	if c, err := os.UserCacheDir(); err == nil {
		sharedWasmCache = filepath.Join(c, "synapse-p2p", "upgrade-test-wasm-cache")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	exampleMu    sync.Mutex
	exampleBuilt = map[string]string{}
)

// example builds an example package once per test binary.
func example(t testing.TB, name string) string {
	t.Helper()
	exampleMu.Lock()
	defer exampleMu.Unlock()
	if p, ok := exampleBuilt[name]; ok {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := examplebuild.Build(ctx, name, exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	exampleBuilt[name] = p
	return p
}

// genesisState returns a devnet genesis state at version 1.0.0 with n nodes.
func genesisState(t testing.TB, n int) []byte {
	t.Helper()
	ids := make([]peer.ID, n)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	g, err := genesis.Devnet("test", ids, 1, 60)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fixedNow is a deterministic clock for history stamps.
func fixedNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// newManager opens a Manager on dir (a fresh temp dir when "").
func newManager(t testing.TB, dir string, mutate func(*Config), deps Deps) *Manager {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := Config{DataDir: dir, Timeout: 20 * time.Second * testutil.Slack, CompilationCacheDir: sharedWasmCache}
	if mutate != nil {
		mutate(&cfg)
	}
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	if deps.Now == nil {
		deps.Now = fixedNow
	}
	m, err := New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// initManager opens a Manager with a fresh genesis state.
func initManager(t testing.TB, mutate func(*Config)) (*Manager, []byte) {
	t.Helper()
	m := newManager(t, "", mutate, Deps{})
	st := genesisState(t, 3)
	if err := m.InitState("1.0.0", st); err != nil {
		t.Fatal(err)
	}
	return m, st
}

// withLimits returns state with global.governance.limits set to lim.
func withLimits(t testing.TB, state []byte, lim genesis.Limits) []byte {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(state))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(lim)
	var l any
	json.Unmarshal(b, &l)
	doc["global"].(map[string]any)["governance"].(map[string]any)["limits"] = l
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// initManagerLimits opens a Manager whose genesis state has the limits lim.
func initManagerLimits(t testing.TB, mutate func(*Config), lim genesis.Limits) (*Manager, []byte) {
	t.Helper()
	return initManagerState(t, mutate, withLimits(t, genesisState(t, 3), lim))
}

// initManagerState opens a Manager with the genesis state st (version 1.0.0).
func initManagerState(t testing.TB, mutate func(*Config), st []byte) (*Manager, []byte) {
	t.Helper()
	m := newManager(t, "", mutate, Deps{})
	if err := m.InitState("1.0.0", st); err != nil {
		t.Fatal(err)
	}
	return m, st
}

func fileHash(t testing.TB, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

// serveFiles serves a directory over HTTP on 127.0.0.1.
func serveFiles(t testing.TB, dir string) *httptest.Server {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// pkgFor describes the example package name, served by srv.
func pkgFor(t testing.TB, srv *httptest.Server, name, version string) Package {
	t.Helper()
	path := example(t, name)
	h, n := fileHash(t, path)
	return Package{ProposalID: "prop-" + name, Version: version,
		URL: srv.URL + "/" + filepath.Base(path), SHA256: "sha256:" + h, Size: n}
}

func examplesServer(t testing.TB) *httptest.Server { return serveFiles(t, exampleDir) }

// globalOf decodes global of a state.
func globalOf(t testing.TB, state []byte) map[string]any {
	t.Helper()
	var doc struct {
		Global map[string]any `json:"global"`
	}
	if err := json.Unmarshal(state, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Global
}
