package upgrade

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testFetcher is a Manager's fetcher with the defaults of Config except
// max and a short idle timeout.
func testFetcher(t *testing.T, max int64) *fetcher {
	t.Helper()
	cfg := Config{MaxPackageBytes: max, DownloadIdleTimeout: time.Second}.withDefaults()
	return newFetcher(t.TempDir(), cfg, Deps{}, testLogger(t))
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestParseHash(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, in, want string }{
		{"bare", good, good},
		{"prefixed", "sha256:" + good, good},
		{"upper case", "SHA256:" + strings.ToUpper(good), good},
		{"empty", "", ""},
		{"prefix only", "sha256:", ""},
		{"short", good[:62], ""},
		{"long", good + "00", ""},
		{"other algorithm", "md5:" + good, ""},
		{"not hex", strings.Repeat("zz", 32), ""},
		{"path", "../../etc/passwd", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHash(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("%q accepted as %q", tc.in, h)
				}
				return
			}
			if err != nil || h != tc.want {
				t.Fatalf("%q: %q %v", tc.in, h, err)
			}
		})
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("0", 64))
	f.Add("../x")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err == nil && (len(h) != 64 || strings.ContainsAny(h, "/\\.")) {
			t.Fatalf("%q -> %q", s, h)
		}
	})
}

func TestFetch(t *testing.T) {
	content := bytes.Repeat([]byte("wasm"), 1000)
	h := hashOf(content)
	mux := http.NewServeMux()
	mux.HandleFunc("/pkg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content)
	})
	mux.HandleFunc("/forever", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	// chunked: no Content-Length, so only the bytes received count.
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Write(content[:10])
		w.(http.Flusher).Flush()
		w.Write(content[10:])
	})
	mux.HandleFunc("/biglength", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(10<<20))
		w.Write(content)
	})
	mux.HandleFunc("/closed-early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:len(content)/2])
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/pkg", http.StatusFound) })
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://127.0.0.1/x.wasm", http.StatusFound)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:10])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/no-headers", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	n := int64(len(content))

	// Everything about the transfer is transient (class ""); only a
	// malformed package_url is deterministic.
	cases := []struct {
		name  string
		p     Package
		class string // "" = transient
		is    error  // for transient failures
		inErr string
	}{
		{"hash mismatch", Package{URL: srv.URL + "/pkg", SHA256: strings.Repeat("0", 64)}, "", errHashMismatch, "sha256 is " + h},
		{"streams forever", Package{URL: srv.URL + "/forever", SHA256: h}, "", errSizeMismatch, "more than the maximum of 65536 bytes"},
		{"content-length above package_size", Package{URL: srv.URL + "/pkg", SHA256: h, Size: 100}, "", errSizeMismatch, "Content-Length 4000, package_size is 100"},
		{"content-length below package_size", Package{URL: srv.URL + "/pkg", SHA256: h, Size: 5000}, "", errSizeMismatch, "Content-Length 4000, package_size is 5000"},
		{"more than package_size", Package{URL: srv.URL + "/chunked", SHA256: h, Size: 100}, "", errSizeMismatch, "more than package_size 100 bytes"},
		{"less than package_size", Package{URL: srv.URL + "/chunked", SHA256: h, Size: 5000}, "", errSizeMismatch, "got 4000 bytes, package_size is 5000"},
		{"content-length over the cap", Package{URL: srv.URL + "/biglength", SHA256: h}, "", errSizeMismatch, "Content-Length 10485760 exceeds the maximum of 65536"},
		{"closed early", Package{URL: srv.URL + "/closed-early", SHA256: h, Size: n}, "", errTransient, "unexpected EOF"},
		{"redirect loop", Package{URL: srv.URL + "/loop", SHA256: h}, "", errRedirectRefused, "stopped after 5 redirects"},
		{"redirect to ftp", Package{URL: srv.URL + "/to-ftp", SHA256: h}, "", errRedirectRefused, `unsupported scheme "ftp"`},
		{"not found", Package{URL: srv.URL + "/missing", SHA256: h}, "", errTransient, "404"},
		{"stalled", Package{URL: srv.URL + "/stall", SHA256: h}, "", errDownloadStalled, "no data for 1s (download_idle_timeout); 10 bytes received"},
		{"no response", Package{URL: srv.URL + "/no-headers", SHA256: h}, "", errDownloadStalled, "no data for 1s"},
		{"ipfs not configured", Package{URL: "ipfs://bafkqaaa", SHA256: h}, "", errIPFSNotConfigured, "ipfs fetching not configured"},
		{"ftp", Package{URL: "ftp://example.com/x.wasm", SHA256: h}, ClassBadPackage, nil, "unsupported scheme"},
		{"no scheme", Package{URL: "/etc/passwd", SHA256: h}, ClassBadPackage, nil, "unsupported scheme"},
		{"no host", Package{URL: "http:///x.wasm", SHA256: h}, ClassBadPackage, nil, "no host"},
		{"not a URL", Package{URL: "http://[::1", SHA256: h}, ClassBadPackage, nil, "missing ']'"},
		{"file disabled", Package{URL: "file:///etc/passwd", SHA256: h}, ClassBadPackage, nil, "file:// URLs are disabled"},
		{"ipfs with path", Package{URL: "ipfs://bafkqaaa/x", SHA256: h}, ClassBadPackage, nil, "want ipfs://<cid>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := testFetcher(t, 64<<10)
			want, err := ParseHash(tc.p.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.get(ctx, tc.p, want)
			t.Log(err)
			if err == nil || classOf(err) != tc.class || !strings.Contains(err.Error(), tc.inErr) {
				t.Fatalf("want class %q with %q, got %v", tc.class, tc.inErr, err)
			}
			if tc.class == "" {
				var fe *fetchError
				if !errors.Is(err, errTransient) || !errors.Is(err, tc.is) || !errors.As(err, &fe) || len(fe.Sources) != 1 {
					t.Fatalf("want a transient *fetchError wrapping %v, got %v", tc.is, err)
				}
			}
			if ents, _ := os.ReadDir(f.cacheDir); len(ents) != 0 {
				t.Fatalf("cache not empty after a failure: %v", ents)
			}
		})
	}

	t.Run("http, redirect, cache, corrupt cache", func(t *testing.T) {
		f := testFetcher(t, 1<<20)
		path, err := f.get(ctx, Package{URL: srv.URL + "/redirect", SHA256: h, Size: int64(len(content))}, h)
		if err != nil || path != filepath.Join(f.cacheDir, h+".wasm") {
			t.Fatalf("%s %v", path, err)
		}
		// Cached: served without the network.
		if _, err := f.get(ctx, Package{URL: "http://127.0.0.1:1/unreachable", SHA256: h}, h); err != nil {
			t.Fatalf("cache not used: %v", err)
		}
		// A corrupted cache file is deleted and never reused.
		os.WriteFile(path, []byte("evil"), 0o644)
		if _, err := f.get(ctx, Package{URL: "http://127.0.0.1:1/unreachable", SHA256: h}, h); !errors.Is(err, errTransient) {
			t.Fatalf("corrupt cache reused: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("corrupt cache file kept: %v", err)
		}
		if _, err := f.get(ctx, Package{URL: srv.URL + "/pkg", SHA256: h}, h); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ipfs and file", func(t *testing.T) {
		f := testFetcher(t, 1<<20)
		var gotCID string
		var gotMax int64
		f.ipfs = func(ctx context.Context, cid string, maxSize int64) (io.ReadCloser, error) {
			gotCID, gotMax = cid, maxSize
			return io.NopCloser(bytes.NewReader(content)), nil
		}
		if _, err := f.get(ctx, Package{URL: "ipfs://bafkqaaa", SHA256: h, Size: int64(len(content))}, h); err != nil {
			t.Fatal(err)
		}
		if gotCID != "bafkqaaa" || gotMax != int64(len(content)) {
			t.Fatalf("ipfs called with %q %d", gotCID, gotMax)
		}
		g := testFetcher(t, 1<<20)
		g.allowFiles = true
		src := filepath.Join(t.TempDir(), "p.wasm")
		os.WriteFile(src, content, 0o644)
		if _, err := g.get(ctx, Package{URL: "file://" + src, SHA256: h}, h); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWasmImports(t *testing.T) {
	// (import "wasi_snapshot_preview1" "fd_write" (func)) (import "env" "mem" (memory 1))
	mod := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0,
		2, 0x26, 2,
		22, 'w', 'a', 's', 'i', '_', 's', 'n', 'a', 'p', 's', 'h', 'o', 't', '_', 'p', 'r', 'e', 'v', 'i', 'e', 'w', '1',
		8, 'f', 'd', '_', 'w', 'r', 'i', 't', 'e', 0, 0,
		3, 'e', 'n', 'v', 3, 'm', 'e', 'm', 2, 0, 1,
	}
	mod[15] = byte(len(mod) - 16)
	imps, err := wasmImports(mod)
	if err != nil || len(imps) != 2 || imps[0] != "wasi_snapshot_preview1.fd_write" || imps[1] != "env.mem (memory)" {
		t.Fatalf("%q %v", imps, err)
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm\x02\x00\x00\x00"), mod[:20]} {
		if _, err := wasmImports(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	e, err := newEngine(context.Background(), "", limits{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close(context.Background())
	if _, info, err := e.compile(context.Background(), mod); classOf(err) != ClassBadModule ||
		!strings.Contains(err.Error(), "env.mem (memory)") || len(info.Imports) != 2 {
		t.Fatalf("%v %+v", err, info)
	}
}

func FuzzWasmImports(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) { wasmImports(b) })
}

func TestDownloadDeadline(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base       time.Duration
		size, rate int64
		want       time.Duration
	}{
		{"1 MiB default", defaultDownloadBaseTimeout, 1 << 20, defaultDownloadMinRate, 46 * time.Second},
		{"64 MiB default", defaultDownloadBaseTimeout, 64 << 20, defaultDownloadMinRate, 30*time.Second + 1024*time.Second},
		{"fraction", time.Second, 1000, 4000, 1250 * time.Millisecond},
		{"saturates", time.Second, 1 << 62, minDownloadMinRate, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := downloadDeadline(tc.base, tc.size, tc.rate); got != tc.want {
				t.Errorf("deadline(%v, %d B, %d B/s) = %v, want %v", tc.base, tc.size, tc.rate, got, tc.want)
			}
		})
	}
	// Validate's download checks are in TestConfigValidate.
	d := Config{DataDir: "x"}.withDefaults()
	if d.DownloadBaseTimeout != 30*time.Second || d.DownloadMinRate != 64<<10 || d.DownloadIdleTimeout != 30*time.Second {
		t.Fatalf("defaults %+v", d)
	}
}

// slowLoris serves size bytes, one every interval, until the client goes.
func slowLoris(size int, interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range size {
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}
}

// A server that sends a byte often enough to beat the idle timeout is cut
// at the deadline derived from the size: 100 ms + 4000 B / 8000 B/s.
func TestFetchSlowLoris(t *testing.T) {
	const size = 4000 // at one byte per 20 ms: 80 s without a deadline
	srv := httptest.NewServer(slowLoris(size, 20*time.Millisecond))
	defer srv.Close()
	f := testFetcher(t, 1<<20)
	f.base, f.minRate, f.idle = 100*time.Millisecond, 8000, 5*time.Second
	content := bytes.Repeat([]byte{0}, size)
	start := time.Now()
	_, err := f.get(context.Background(), Package{URL: srv.URL, SHA256: hashOf(content), Size: size}, hashOf(content))
	if !isTransient(err) || !errors.Is(err, errDownloadDeadline) ||
		!strings.Contains(err.Error(), "600ms for 4000 bytes (download_base_timeout 100ms + size / download_min_rate 8000 B/s)") {
		t.Fatalf("want the download deadline, got %v", err)
	}
	// Not a performance figure: the server would go on for 80 s.
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the deadline did not stop the download (%v)", took)
	}
	if ents, _ := os.ReadDir(f.cacheDir); len(ents) != 0 {
		t.Fatalf("cache not empty: %v", ents)
	}
}

// https must never continue over http; http may move to https.
func TestFetchRedirects(t *testing.T) {
	content := bytes.Repeat([]byte("tls!"), 100)
	h := hashOf(content)
	var plainURL, tlsURL string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pkg":
			w.Write(content)
		case "/to-http":
			http.Redirect(w, r, plainURL+"/pkg", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, tlsURL+"/pkg", http.StatusFound)
		case "/to-https-to-http":
			http.Redirect(w, r, tlsURL+"/to-http", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()
	plainURL, tlsURL = plain.URL, tlsSrv.URL

	f := testFetcher(t, 1<<20)
	// Trust the test server's certificate; keep the redirect policy.
	f.client.Transport.(*http.Transport).TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	ctx := context.Background()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{tlsURL + "/to-http", false},
		{plainURL + "/to-https-to-http", false},
		{plainURL + "/to-https", true},
		{tlsURL + "/to-https", true},
	} {
		t.Run(strings.TrimPrefix(tc.url, "http"), func(t *testing.T) {
			path, err := f.get(ctx, Package{URL: tc.url, SHA256: h, Size: int64(len(content))}, h)
			if tc.ok != (err == nil) {
				t.Fatalf("%s: ok=%v, got %v", tc.url, tc.ok, err)
			}
			if !tc.ok && (!isTransient(err) || !errors.Is(err, errRedirectRefused) || !strings.Contains(err.Error(), "https must not downgrade to http")) {
				t.Fatalf("%s: want a refused redirect, got %v", tc.url, err)
			}
			if tc.ok {
				os.Remove(path) // the next case downloads again
			}
		})
	}
}

// fakeIPFS serves content per CID (nil: not found) and counts calls; it
// stops when ctx is done, like the real one.
type fakeIPFS struct {
	mu    sync.Mutex
	data  map[string][]byte
	calls []string
}

func (fi *fakeIPFS) fetch(ctx context.Context, cid string, maxSize int64) (io.ReadCloser, error) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.calls = append(fi.calls, cid)
	b, ok := fi.data[cid]
	if !ok {
		return nil, errors.New("no providers")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return io.NopCloser(io.LimitReader(bytes.NewReader(b), maxSize+1)), nil
}

func (fi *fakeIPFS) called() []string {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return slices.Clone(fi.calls)
}

func TestFetchSources(t *testing.T) {
	content := bytes.Repeat([]byte("src!"), 500)
	h := hashOf(content)
	size := int64(len(content))
	wrong := bytes.Repeat([]byte("evil"), 500)
	mux := http.NewServeMux()
	var gets atomic.Int32
	mux.HandleFunc("/pkg", func(w http.ResponseWriter, r *http.Request) { gets.Add(1); w.Write(content) })
	mux.HandleFunc("/wrong", func(w http.ResponseWriter, r *http.Request) { w.Write(wrong) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	newF := func(t *testing.T) (*fetcher, *fakeIPFS, *[]string) {
		f := testFetcher(t, 1<<20)
		fi := &fakeIPFS{data: map[string][]byte{"bafy-good": content, "bafy-wrong": wrong}}
		f.ipfs = fi.fetch
		var verified []string
		f.onVerified = func(_ context.Context, sum, path string) {
			verified = append(verified, sum+" "+path)
		}
		return f, fi, &verified
	}

	t.Run("alternative used after the URL fails", func(t *testing.T) {
		f, fi, verified := newF(t)
		p := Package{URL: srv.URL + "/wrong", SHA256: h, Size: size,
			Sources: []string{"ipfs://bafy-missing", "ipfs://bafy-good", "ipfs://bafy-wrong"}}
		path, err := f.get(ctx, p, h)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
			t.Fatal("cached bytes differ")
		}
		if got := fi.called(); !slices.Equal(got, []string{"bafy-missing", "bafy-good"}) {
			t.Fatalf("ipfs calls %v: want the sources in order, stopping at the first verified copy", got)
		}
		if !slices.Equal(*verified, []string{h + " " + path}) {
			t.Fatalf("OnVerified calls %v", *verified)
		}
		// From the cache now: no download, no second OnVerified.
		if _, err := f.get(ctx, p, h); err != nil || len(*verified) != 1 || len(fi.called()) != 2 {
			t.Fatalf("cache: %v, OnVerified %v, ipfs %v", err, *verified, fi.called())
		}
	})
	t.Run("every source fails", func(t *testing.T) {
		f, _, verified := newF(t)
		p := Package{URL: srv.URL + "/wrong", SHA256: h, Size: size,
			Sources: []string{srv.URL + "/wrong", "ipfs://bafy-missing", "", "ipfs://bafy-wrong", "ipfs://x/y", "gopher://x"}}
		_, err := f.get(ctx, p, h)
		var fe *fetchError
		if !isTransient(err) || !errors.As(err, &fe) || !errors.Is(err, errHashMismatch) {
			t.Fatalf("want a transient *fetchError, got %v", err)
		}
		want := []string{srv.URL + "/wrong", "ipfs://bafy-missing", "ipfs://bafy-wrong", "ipfs://x/y", "gopher://x"}
		if len(fe.Sources) != len(want) {
			t.Fatalf("sources %+v, want %v (duplicates and empty skipped)", fe.Sources, want)
		}
		for i, s := range fe.Sources {
			if s.Source != want[i] || s.Err == nil || !strings.Contains(err.Error(), s.Source+": ") {
				t.Fatalf("source %d: %+v; error %v", i, s, err)
			}
		}
		for i, is := range []error{errHashMismatch, nil, errHashMismatch, nil, nil} {
			if is != nil && !errors.Is(fe.Sources[i].Err, is) {
				t.Fatalf("source %d: %v, want %v", i, fe.Sources[i].Err, is)
			}
		}
		if !strings.Contains(err.Error(), "5 sources failed") || !strings.Contains(err.Error(), "no providers") ||
			!strings.Contains(err.Error(), "malformed source: want ipfs://<cid>") {
			t.Fatalf("message %v", err)
		}
		if ents, _ := os.ReadDir(f.cacheDir); len(ents) != 0 || len(*verified) != 0 {
			t.Fatalf("bad bytes kept: cache %v, OnVerified %v", ents, *verified)
		}
	})
	t.Run("a malformed entry URL is deterministic whatever the sources", func(t *testing.T) {
		f, fi, _ := newF(t)
		_, err := f.get(ctx, Package{URL: "ftp://x/p.wasm", SHA256: h, Size: size, Sources: []string{"ipfs://bafy-good"}}, h)
		if classOf(err) != ClassBadPackage || len(fi.called()) != 0 {
			t.Fatalf("%v; ipfs calls %v", err, fi.called())
		}
	})
	t.Run("a cancelled fetch tries no further source", func(t *testing.T) {
		f, fi, _ := newF(t)
		cctx, cancel := context.WithCancel(ctx)
		f.ipfs = func(ctx context.Context, cid string, maxSize int64) (io.ReadCloser, error) {
			cancel()
			return fi.fetch(ctx, cid, maxSize)
		}
		_, err := f.get(cctx, Package{URL: "ipfs://bafy-wrong", SHA256: h, Size: size, Sources: []string{"ipfs://bafy-good"}}, h)
		if !isTransient(err) || !errors.Is(err, context.Canceled) || !slices.Equal(fi.called(), []string{"bafy-wrong"}) {
			t.Fatalf("%v; ipfs calls %v", err, fi.called())
		}
	})
	t.Run("concurrent fetches of one package download it once", func(t *testing.T) {
		f, _, verified := newF(t)
		gets.Store(0)
		p := Package{URL: srv.URL + "/pkg", SHA256: h, Size: size}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, errs[i] = f.get(ctx, p, h) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if gets.Load() != 1 || len(*verified) != 1 {
			t.Fatalf("%d downloads, %d OnVerified calls; want 1 and 1", gets.Load(), len(*verified))
		}
		if len(f.locks) != 0 {
			t.Fatalf("hash locks leak: %v", f.locks)
		}
	})
}

// FuzzParseSource: package URLs come from the network (entries, announced
// sources); a parsed source is always one the fetcher can open.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"https://example.com/p.wasm", "ipfs://bafkqaaa", "ipfs:bafkqaaa", "ipfs://x/y",
		"file:///tmp/p.wasm", "http:///x", "HTTP://h/p", "http://[::1", "gopher://x", ""} {
		f.Add(s)
	}
	fe := &fetcher{allowFiles: true}
	f.Fuzz(func(t *testing.T, raw string) {
		src, err := fe.parseSource(raw)
		if err != nil {
			return
		}
		switch strings.ToLower(src.u.Scheme) {
		case "http", "https":
			if src.u.Host == "" {
				t.Fatalf("%q: http without host accepted", raw)
			}
		case "ipfs":
			if src.cid == "" {
				t.Fatalf("%q: ipfs without cid accepted", raw)
			}
		case "file":
			if src.u.Path == "" {
				t.Fatalf("%q: file without path accepted", raw)
			}
		default:
			t.Fatalf("%q: scheme %q accepted", raw, src.u.Scheme)
		}
	})
}
