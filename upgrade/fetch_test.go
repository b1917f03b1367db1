package upgrade

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testFetcher(t *testing.T, max int64) *fetcher {
	t.Helper()
	return &fetcher{cacheDir: t.TempDir(), maxBytes: max, client: newHTTPClient(), idle: 2 * time.Second}
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestParseHash(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, in := range []string{good, "sha256:" + good, "SHA256:" + strings.ToUpper(good)} {
		if h, err := ParseHash(in); err != nil || h != good {
			t.Errorf("%q: %q %v", in, h, err)
		}
	}
	for _, in := range []string{"", "sha256:", good[:62], good + "00", "md5:" + good, strings.Repeat("zz", 32), "../../etc/passwd"} {
		if _, err := ParseHash(in); err == nil {
			t.Errorf("%q accepted", in)
		}
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
	mux.HandleFunc("/pkg", func(w http.ResponseWriter, r *http.Request) { w.Write(content) })
	mux.HandleFunc("/forever", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/biglength", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(10<<20))
		w.Write(content)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/pkg", http.StatusFound) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:10])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	cases := []struct {
		name  string
		p     Package
		class string // "" = transient
		inErr string
	}{
		{"hash mismatch", Package{URL: srv.URL + "/pkg", SHA256: strings.Repeat("0", 64)}, ClassHashMismatch, "sha256 is"},
		{"streams forever", Package{URL: srv.URL + "/forever", SHA256: h}, ClassSizeLimit, "more than 65536 bytes"},
		{"more than package_size", Package{URL: srv.URL + "/pkg", SHA256: h, Size: 100}, ClassSizeLimit, "more than 100 bytes"},
		{"less than package_size", Package{URL: srv.URL + "/pkg", SHA256: h, Size: 5000}, ClassSizeLimit, "package_size is 5000"},
		{"content-length over the cap", Package{URL: srv.URL + "/biglength", SHA256: h}, ClassSizeLimit, "Content-Length"},
		{"redirect loop", Package{URL: srv.URL + "/loop", SHA256: h}, "", "redirects"},
		{"not found", Package{URL: srv.URL + "/missing", SHA256: h}, "", "404"},
		{"stalled", Package{URL: srv.URL + "/stall", SHA256: h}, "", "download"},
		{"ftp", Package{URL: "ftp://example.com/x.wasm", SHA256: h}, ClassBadPackage, "unsupported scheme"},
		{"no scheme", Package{URL: "/etc/passwd", SHA256: h}, ClassBadPackage, "unsupported scheme"},
		{"file disabled", Package{URL: "file:///etc/passwd", SHA256: h}, ClassBadPackage, "file:// URLs are disabled"},
		{"ipfs not configured", Package{URL: "ipfs://bafkqaaa", SHA256: h}, "", "ipfs fetching not configured"},
		{"ipfs with path", Package{URL: "ipfs://bafkqaaa/x", SHA256: h}, ClassBadPackage, "want ipfs://<cid>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := testFetcher(t, 64<<10)
			want, err := ParseHash(tc.p.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.get(ctx, tc.p, want)
			if err == nil || ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.inErr) {
				t.Fatalf("want class %q with %q, got %v", tc.class, tc.inErr, err)
			}
			if tc.class == "" && !errors.Is(err, ErrTransient) {
				t.Fatalf("not transient: %v", err)
			}
			if ents, _ := os.ReadDir(f.cacheDir); len(ents) != 0 {
				t.Fatalf("cache not empty after a failure: %v", ents)
			}
		})
	}
	if !errors.Is(func() error { _, err := testFetcher(t, 1<<20).get(ctx, cases[11].p, h); return err }(), ErrIPFSNotConfigured) {
		t.Fatal("ipfs error does not wrap ErrIPFSNotConfigured")
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
		if _, err := f.get(ctx, Package{URL: "http://127.0.0.1:1/unreachable", SHA256: h}, h); !errors.Is(err, ErrTransient) {
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
	if _, info, err := e.compile(context.Background(), mod); ClassOf(err) != ClassBadModule ||
		!strings.Contains(err.Error(), "env.mem (memory)") || len(info.Imports) != 2 {
		t.Fatalf("%v %+v", err, info)
	}
}

func FuzzWasmImports(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) { wasmImports(b) })
}
