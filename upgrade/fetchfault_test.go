package upgrade

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults a package server can inject in one response.
const (
	serveGood     = "good"
	serveWrong    = "wrong"    // right length, one byte changed
	serveTruncate = "truncate" // full Content-Length, half the body, connection closed
	serveShort    = "short"    // no Content-Length, half the body, clean end
	serveMissing  = "missing"  // 404
)

// faultServer serves the bytes of file at /pkg.wasm; fault(i) picks the
// fault of the i-th request (from 0).
type faultServer struct {
	*httptest.Server
	requests atomic.Int32
}

func newFaultServer(t testing.TB, file string, fault func(i int) string) *faultServer {
	t.Helper()
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(fs.requests.Add(1)) - 1
		switch fault(i) {
		case serveGood:
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content)
		case serveWrong:
			bad := append([]byte(nil), content...)
			bad[len(bad)/2] ^= 0xff
			w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
			w.Write(bad)
		case serveTruncate:
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:len(content)/2])
		case serveShort:
			w.Write(content[:len(content)/2])
			w.(http.Flusher).Flush() // chunked: the body just ends early
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fs.Close)
	return fs
}

// examplePackage describes example name served by srv at /pkg.wasm.
func examplePackage(t testing.TB, srv *httptest.Server, name, version string) Package {
	t.Helper()
	h, n := fileHash(t, example(t, name))
	return Package{ProposalID: "prop-" + name, Version: version, URL: srv.URL + "/pkg.wasm", SHA256: "sha256:" + h, Size: n}
}

// assertNothingExecuted checks that a transient failure changed nothing.
func assertNothingExecuted(t *testing.T, m *Manager, stateSum string) {
	t.Helper()
	v, _, sum := m.State()
	if m.LastExecutedSeq() != 0 || len(m.History()) != 0 || v != "1.0.0" || sum != stateSum {
		t.Fatalf("a transient failure changed the executor: seq %d, version %s, history %+v", m.LastExecutedSeq(), v, m.History())
	}
	ents, err := os.ReadDir(m.fetch.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Fatalf("bad bytes kept in the package cache: %s", e.Name())
	}
}

// Wrong bytes from the server are transient: nothing is committed, and the
// entry executes once the server is fixed.
func TestExecuteWrongBytesIsTransient(t *testing.T) {
	m, _ := initManager(t, nil)
	_, _, before := m.State()
	var fixed atomic.Bool
	srv := newFaultServer(t, example(t, "add-feature-flag"), func(int) string {
		if fixed.Load() {
			return serveGood
		}
		return serveWrong
	})
	e := Entry{Seq: 1, Package: examplePackage(t, srv.Server, "add-feature-flag", "1.2.0")}
	ctx := context.Background()
	for range 2 {
		r, err := m.Execute(ctx, e)
		if !isTransient(err) || !errors.Is(err, errHashMismatch) {
			t.Fatalf("want a transient hash mismatch, got %+v %v", r, err)
		}
		assertNothingExecuted(t, m, before)
	}
	fixed.Store(true)
	r, err := m.Execute(ctx, e)
	if err != nil || !r.Success || r.Version != "1.2.0" || m.LastExecutedSeq() != 1 {
		t.Fatalf("after the server is fixed: %+v %v", r, err)
	}
}

// A body that ends early, with or without Content-Length, is transient.
func TestExecuteTruncatedIsTransient(t *testing.T) {
	for _, fault := range []string{serveTruncate, serveShort} {
		t.Run(fault, func(t *testing.T) {
			m, _ := initManager(t, nil)
			_, _, before := m.State()
			srv := newFaultServer(t, example(t, "add-feature-flag"), func(int) string { return fault })
			r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: examplePackage(t, srv.Server, "add-feature-flag", "1.2.0")})
			if !isTransient(err) {
				t.Fatalf("want transient, got %+v %v", r, err)
			}
			if fault == serveShort && !errors.Is(err, errSizeMismatch) {
				t.Fatalf("want errSizeMismatch, got %v", err)
			}
			assertNothingExecuted(t, m, before)
		})
	}
}

// A server that corrupts or cuts its first responses delays the entry but
// ends in the same state as a clean run, executed once.
func TestExecuteFlakyServerConverges(t *testing.T) {
	st := genesisState(t, 3)
	ctx := context.Background()
	run := func(faults []string) (Result, int) {
		m := newManager(t, "", nil, Deps{})
		if err := m.InitState("1.0.0", st); err != nil {
			t.Fatal(err)
		}
		srv := newFaultServer(t, example(t, "add-feature-flag"), func(i int) string {
			if i < len(faults) {
				return faults[i]
			}
			return serveGood
		})
		e := Entry{Seq: 1, Package: examplePackage(t, srv.Server, "add-feature-flag", "1.2.0")}
		for tries := 1; tries <= 10; tries++ {
			r, err := m.Execute(ctx, e)
			if err == nil {
				if h := m.History(); len(h) != 1 || !h[0].Success {
					t.Fatalf("history %+v", h)
				}
				return r, tries
			}
			if !isTransient(err) {
				t.Fatalf("try %d: %v", tries, err)
			}
			if m.LastExecutedSeq() != 0 {
				t.Fatalf("try %d failed but seq moved", tries)
			}
		}
		t.Fatal("never succeeded")
		return Result{}, 0
	}
	clean, _ := run(nil)
	flaky, tries := run([]string{serveWrong, serveTruncate, serveShort, serveMissing, serveWrong})
	if tries != 6 {
		t.Fatalf("succeeded at try %d, want 6 (after 5 faults)", tries)
	}
	if !clean.Success || !flaky.Success || flaky.PostStateSHA256 != clean.PostStateSHA256 || flaky.Version != clean.Version {
		t.Fatalf("flaky run %+v differs from clean run %+v", flaky, clean)
	}
}

// A server that sends a byte often enough to beat the idle timeout is cut
// at the deadline derived from the size, and Execute returns transiently.
func TestExecuteSlowLorisIsTransient(t *testing.T) {
	m, _ := initManager(t, func(c *Config) {
		c.DownloadBaseTimeout = 300 * time.Millisecond
		c.DownloadMinRate = 1 << 40 // the size adds nothing: the deadline is 300 ms
		c.DownloadIdleTimeout = 10 * time.Second
	})
	_, _, before := m.State()
	h, n := fileHash(t, example(t, "add-feature-flag"))
	srv := httptest.NewServer(slowLoris(int(n), 20*time.Millisecond)) // hours for a real package
	t.Cleanup(srv.Close)
	start := time.Now()
	r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: Package{ProposalID: "p", Version: "1.2.0",
		URL: srv.URL + "/pkg.wasm", SHA256: h, Size: n}})
	if !isTransient(err) || !errors.Is(err, errDownloadDeadline) {
		t.Fatalf("want a transient download deadline, got %+v %v", r, err)
	}
	// Not a performance figure: without the deadline it would take hours.
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("Execute held for %v", took)
	}
	assertNothingExecuted(t, m, before)
}

// When the URL fails, an alternative source (ipfs through Deps.IPFSFetch)
// gives the package; OnVerified sees the cached copy once.
func TestExecuteAlternativeSource(t *testing.T) {
	file := example(t, "add-feature-flag")
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fi := &fakeIPFS{data: map[string][]byte{"bafy-pkg": content}}
	type verified struct{ sum, path string }
	var mu sync.Mutex
	var calls []verified
	m := newManager(t, "", nil, Deps{IPFSFetch: fi.fetch, OnVerified: func(_ context.Context, sum, path string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, verified{sum, path})
	}})
	if err := m.InitState("1.0.0", genesisState(t, 3)); err != nil {
		t.Fatal(err)
	}
	srv := newFaultServer(t, file, func(int) string { return serveMissing })
	p := examplePackage(t, srv.Server, "add-feature-flag", "1.2.0")
	p.Sources = []string{"ipfs://bafy-missing", "ipfs://bafy-pkg"}
	ctx := context.Background()
	r, err := m.Execute(ctx, Entry{Seq: 1, Package: p})
	if err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}
	h, _ := ParseHash(p.SHA256)
	mu.Lock()
	got := append([]verified(nil), calls...)
	mu.Unlock()
	if len(got) != 1 || got[0].sum != h || got[0].path != filepath.Join(m.fetch.cacheDir, h+".wasm") {
		t.Fatalf("OnVerified calls %+v", got)
	}
	if b, err := os.ReadFile(got[0].path); err != nil || string(b) != string(content) {
		t.Fatalf("OnVerified path does not hold the package: %v", err)
	}
	// A dry run reads the cache: no download, no second call.
	if _, err := m.Test(ctx, Package{ProposalID: "again", Version: "1.3.0", URL: p.URL, SHA256: p.SHA256, Size: p.Size}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || srv.requests.Load() != 1 {
		t.Fatalf("OnVerified %d calls, %d HTTP requests after a cached dry run", len(calls), srv.requests.Load())
	}
}

// A download in progress does not hold the executor's lock: Rollback and
// Resume complete while it runs, and Execute, finding the executor paused
// when the package arrives, commits nothing.
func TestRollbackDuringDownload(t *testing.T) {
	m, _ := initManager(t, nil)
	ctx := context.Background()
	examples := examplesServer(t)
	first := pkgFor(t, examples, "add-feature-flag", "1.2.0")
	if r, err := m.Execute(ctx, Entry{Seq: 1, Package: first}); err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}

	content, err := os.ReadFile(example(t, "command-feature-flag"))
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:100])
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		select {
		case <-release:
			w.Write(content[100:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	second := examplePackage(t, srv, "command-feature-flag", "1.3.0")
	errc := make(chan error, 1)
	go func() {
		_, err := m.Execute(ctx, Entry{Seq: 2, Package: second})
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("Execute returned before downloading: %v", err)
	}

	// Both take the executor's lock; Resume is a no-op (not paused yet).
	locked := make(chan error, 1)
	go func() {
		if err := m.Resume(); err != nil {
			locked <- err
			return
		}
		_, err := m.Rollback(ctx, first.ProposalID)
		locked <- err
	}()
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("Rollback/Resume blocked by a download")
	}
	close(release)
	if err := <-errc; !errors.Is(err, ErrPaused) {
		t.Fatalf("Execute after a rollback during its download: %v, want ErrPaused", err)
	}
	if m.LastExecutedSeq() != 1 {
		t.Fatalf("seq %d", m.LastExecutedSeq())
	}
	// The downloaded package is cached: after Resume it runs without the
	// server.
	srv.Close()
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	r, err := m.Execute(ctx, Entry{Seq: 2, Package: second})
	if err != nil || !r.Success || r.PreviousVersion != "1.0.0" || r.Version != "1.3.0" {
		t.Fatalf("%+v %v", r, err)
	}
}
