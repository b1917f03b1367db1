package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IPFSFetchFunc fetches ipfs://<cid> content (bitswap); maxSize caps the
// stream. node/ injects it.
type IPFSFetchFunc func(ctx context.Context, cid string, maxSize int64) (io.ReadCloser, error)

// Fetch timeouts.
const (
	connectTimeout = 10 * time.Second
	headerTimeout  = 30 * time.Second
	// readIdleTimeout fails a download that makes no progress for this long.
	readIdleTimeout = 30 * time.Second
	maxRedirects    = 5
)

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connectTimeout}).DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: headerTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)
			}
			return nil
		},
	}
}

// fetcher downloads packages into the verified cache.
type fetcher struct {
	cacheDir   string
	maxBytes   int64
	allowFiles bool
	ipfs       IPFSFetchFunc
	client     *http.Client
	idle       time.Duration
}

// cachePath is where the package with the verified hash h lives. h has
// passed ParseHash, so it is 64 hex digits: no path traversal.
func (f *fetcher) cachePath(h string) string { return filepath.Join(f.cacheDir, h+".wasm") }

// get returns the path of a verified copy of p (hash h), downloading it if
// the cache has no valid copy.
func (f *fetcher) get(ctx context.Context, p Package, h string) (string, error) {
	path := f.cachePath(h)
	if ok, err := verifyFile(path, h, p.Size); err != nil {
		return "", err
	} else if ok {
		return path, nil
	}
	limit := f.maxBytes
	if p.Size > 0 {
		limit = p.Size
	}
	rc, err := f.open(ctx, p.URL, limit)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(f.cacheDir, tmpPrefix+"download-*")
	if err != nil {
		return "", transient("cache: %v", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()
	hasher := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, hasher), io.LimitReader(rc, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", transient("download %s: %v", p.URL, ctx.Err())
		}
		return "", transient("download %s: %v", p.URL, err)
	}
	if n > limit {
		return "", pkgErr(ClassSizeLimit, "%s: more than %d bytes", p.URL, limit)
	}
	if p.Size > 0 && n != p.Size {
		return "", pkgErr(ClassSizeLimit, "%s: got %d bytes, package_size is %d", p.URL, n, p.Size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != h {
		return "", pkgErr(ClassHashMismatch, "%s: sha256 is %s, package_hash is %s", p.URL, got, h)
	}
	if err := tmp.Sync(); err != nil {
		return "", transient("cache: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return "", transient("cache: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", transient("cache: %v", err)
	}
	return path, nil
}

// verifyFile reports whether path holds content with hash h (and size, if
// > 0). A file that fails verification is deleted.
func verifyFile(path, h string, size int64) (bool, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, transient("cache: %v", err)
	}
	defer fh.Close()
	hasher := sha256.New()
	n, err := io.Copy(hasher, fh)
	if err != nil {
		return false, transient("cache: %v", err)
	}
	if hex.EncodeToString(hasher.Sum(nil)) == h && (size <= 0 || n == size) {
		return true, nil
	}
	if err := os.Remove(path); err != nil {
		return false, transient("cache: removing corrupt %s: %v", path, err)
	}
	return false, nil
}

// open starts a download by URL scheme; limit is the byte cap.
func (f *fetcher) open(ctx context.Context, raw string, limit int64) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, pkgErr(ClassBadPackage, "package_url %q: %v", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return f.openHTTP(ctx, u, limit)
	case "ipfs":
		cid := u.Host
		if cid == "" {
			cid = strings.TrimPrefix(u.Opaque, "//")
		}
		if cid == "" || strings.Trim(u.Path, "/") != "" {
			return nil, pkgErr(ClassBadPackage, "package_url %q: want ipfs://<cid>", raw)
		}
		if f.ipfs == nil {
			return nil, fmt.Errorf("%w: %w (%s)", ErrTransient, ErrIPFSNotConfigured, raw)
		}
		rc, err := f.ipfs(ctx, cid, limit)
		if err != nil {
			return nil, transient("ipfs fetch %s: %v", cid, err)
		}
		return rc, nil
	case "file":
		if !f.allowFiles {
			return nil, pkgErr(ClassBadPackage, "package_url %q: file:// URLs are disabled (dev only: AllowFileURLs)", raw)
		}
		fh, err := os.Open(u.Path)
		if err != nil {
			return nil, transient("open %s: %v", u.Path, err)
		}
		return fh, nil
	default:
		return nil, pkgErr(ClassBadPackage, "package_url %q: unsupported scheme (want http, https, ipfs)", raw)
	}
}

func (f *fetcher) openHTTP(ctx context.Context, u *url.URL, limit int64) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, pkgErr(ClassBadPackage, "package_url %q: %v", u, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		return nil, transient("GET %s: %v", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, transient("GET %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		cancel()
		return nil, pkgErr(ClassSizeLimit, "GET %s: Content-Length %d exceeds %d bytes", u.Redacted(), resp.ContentLength, limit)
	}
	return &idleReader{rc: resp.Body, cancel: cancel, timer: time.AfterFunc(f.idle, cancel), idle: f.idle}, nil
}

// idleReader cancels the request when no bytes arrive for idle.
type idleReader struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	timer  *time.Timer
	idle   time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	err := r.rc.Close()
	r.cancel()
	return err
}
