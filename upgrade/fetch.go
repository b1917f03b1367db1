package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
)

// IPFSFetchFunc fetches ipfs://<cid> content (bitswap); maxSize caps the
// stream. It must stop when ctx is done: the executor's download deadlines
// cancel ctx. node/ injects it.
type IPFSFetchFunc func(ctx context.Context, cid string, maxSize int64) (io.ReadCloser, error)

// HTTP client limits. The overall deadline and the idle timeout of a
// download come from Config (DownloadBaseTimeout, DownloadMinRate,
// DownloadIdleTimeout); the idle timeout also bounds the wait for the
// response headers.
const (
	connectTimeout = 10 * time.Second
	maxRedirects   = 5
)

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: connectTimeout}).DialContext,
		TLSHandshakeTimeout: connectTimeout,
		MaxIdleConns:        4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: checkRedirect}
}

// checkRedirect follows at most maxRedirects redirects, only to http or
// https, and never from https to anything but https: a package fetched
// over TLS must not continue in clear text, where anyone on the path could
// replace it (the hash would catch that, but the node would lose the
// download).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirectRefused, maxRedirects)
	}
	to := strings.ToLower(req.URL.Scheme)
	if to != "http" && to != "https" {
		return fmt.Errorf("%w: to unsupported scheme %q", errRedirectRefused, req.URL.Scheme)
	}
	if to == "http" {
		for _, v := range via {
			if strings.EqualFold(v.URL.Scheme, "https") {
				return fmt.Errorf("%w: %s redirects to %s: https must not downgrade to http",
					errRedirectRefused, via[len(via)-1].URL.Redacted(), req.URL.Redacted())
			}
		}
	}
	return nil
}

// fetcher downloads packages into the verified cache, from the package's
// URL or its alternative sources.
type fetcher struct {
	cacheDir   string
	maxBytes   int64
	allowFiles bool
	ipfs       IPFSFetchFunc
	onVerified func(ctx context.Context, sha256hex, path string)
	client     *http.Client
	log        *slog.Logger

	// Download deadlines: base + size/minRate overall, idle without a byte.
	base    time.Duration
	minRate int64
	idle    time.Duration

	mu    sync.Mutex
	locks map[string]*hashLock // by package hash; one download per hash at a time
}

// newFetcher makes the fetcher of a Manager; cfg has its defaults set.
func newFetcher(dir string, cfg Config, deps Deps, log *slog.Logger) *fetcher {
	return &fetcher{
		cacheDir: dir, maxBytes: cfg.MaxPackageBytes, allowFiles: cfg.AllowFileURLs,
		ipfs: deps.IPFSFetch, onVerified: deps.OnVerified, client: newHTTPClient(), log: log,
		base: cfg.DownloadBaseTimeout, minRate: cfg.DownloadMinRate, idle: cfg.DownloadIdleTimeout,
	}
}

// cachePath is where the package with the verified hash h lives. h has
// passed ParseHash, so it is 64 hex digits: no path traversal.
func (f *fetcher) cachePath(h string) string { return filepath.Join(f.cacheDir, h+".wasm") }

// fetchError is the transient failure of fetching a package: no source gave
// bytes that match its hash and size. It wraps errTransient and the error of
// every source, so errors.Is finds errHashMismatch, errDownloadDeadline, …
// when any source failed that way.
type fetchError struct {
	SHA256  string        // the package hash, 64 lowercase hex digits
	Sources []sourceError // in the order tried
}

// sourceError is why one source of a package failed.
type sourceError struct {
	Source string // the URL, any password redacted
	Err    error
}

func (e *fetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: fetch sha256:%s: ", errTransient, e.SHA256)
	if len(e.Sources) != 1 {
		fmt.Fprintf(&b, "%d sources failed: ", len(e.Sources))
	}
	for i, s := range e.Sources {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", s.Source, s.Err)
	}
	return b.String()
}

// Unwrap returns errTransient and each source's error.
func (e *fetchError) Unwrap() []error {
	errs := []error{errTransient}
	for _, s := range e.Sources {
		errs = append(errs, s.Err)
	}
	return errs
}

// get returns the path of a verified copy of p (hash h), downloading it if
// the cache has no valid copy: from p.URL, then from each of p.Sources,
// until one gives bytes of hash h and size p.Size. A malformed p.URL is a
// deterministic bad_package (it is part of the entry); everything else
// about fetching is transient. Bytes that fail verification are never
// cached.
func (f *fetcher) get(ctx context.Context, p Package, h string) (string, error) {
	if _, err := f.parseSource(p.URL); err != nil {
		return "", pkgErr(ClassBadPackage, "package_url %q: %v", p.URL, err)
	}
	unlock, err := f.lockHash(ctx, h)
	if err != nil {
		return "", transient("fetch sha256:%s: %v", h, err)
	}
	defer unlock()
	path := f.cachePath(h)
	if ok, err := verifyFile(path, h, p.Size); err != nil {
		return "", err
	} else if ok {
		return path, nil
	}
	fe := &fetchError{SHA256: h}
	for _, raw := range sourcesOf(p) {
		src, err := f.parseSource(raw)
		if err == nil {
			err = f.download(ctx, src, p, h, path)
		} else {
			err = fmt.Errorf("malformed source: %w", err)
		}
		if err == nil {
			f.log.Debug("package fetched", "sha256", h, "source", src, "failed_sources", len(fe.Sources))
			if len(fe.Sources) > 0 {
				f.log.Info("package fetched from an alternative source", "sha256", h, "source", src, "err", fe)
			}
			if f.onVerified != nil {
				f.onVerified(ctx, h, path)
			}
			return path, nil
		}
		fe.Sources = append(fe.Sources, sourceError{Source: redact(raw), Err: err})
		if ctx.Err() != nil {
			break // the caller gave up: do not start the next source
		}
	}
	return "", fe
}

// sourcesOf lists where p can be fetched: its URL, then each alternative
// source once.
func sourcesOf(p Package) []string {
	out := []string{p.URL}
	for _, s := range p.Sources {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// redact hides a password in a URL for messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// hashLock serialises downloads of one package, so concurrent Execute and
// Test calls download it once (the second finds it in the cache).
type hashLock struct {
	ch   chan struct{}
	refs int
}

func (f *fetcher) lockHash(ctx context.Context, h string) (func(), error) {
	f.mu.Lock()
	if f.locks == nil {
		f.locks = map[string]*hashLock{}
	}
	l := f.locks[h]
	if l == nil {
		l = &hashLock{ch: make(chan struct{}, 1)}
		f.locks[h] = l
	}
	l.refs++
	f.mu.Unlock()
	release := func() {
		f.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(f.locks, h)
		}
		f.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// source is a parsed package location.
type source struct {
	u   *url.URL
	cid string // ipfs only
}

func (s source) String() string { return s.u.Redacted() }

// parseSource checks a package location: http(s)://host/…, ipfs://<cid>,
// or file://… when AllowFileURLs.
func (f *fetcher) parseSource(raw string) (source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, err
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return source{}, errors.New("no host")
		}
		return source{u: u}, nil
	case "ipfs":
		cid := u.Host
		if cid == "" {
			cid = strings.TrimPrefix(u.Opaque, "//")
		}
		if cid == "" || strings.Trim(u.Path, "/") != "" {
			return source{}, errors.New("want ipfs://<cid>")
		}
		return source{u: u, cid: cid}, nil
	case "file":
		if !f.allowFiles {
			return source{}, errors.New("file:// URLs are disabled (dev only: AllowFileURLs)")
		}
		if u.Path == "" {
			return source{}, errors.New("file:// URL without a path")
		}
		return source{u: u}, nil
	default:
		return source{}, errors.New("unsupported scheme (want http, https, ipfs)")
	}
}

// limit is the most bytes a download of p may have: package_size, or the
// maximum when it is unknown.
func (f *fetcher) limit(p Package) int64 {
	if p.Size > 0 {
		return p.Size
	}
	return f.maxBytes
}

// downloadDeadline is base + size/rate, saturating.
func downloadDeadline(base time.Duration, size, rate int64) time.Duration {
	d := float64(base) + float64(size)/float64(rate)*float64(time.Second)
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// download fetches p from src into the cache at dst, verifying size and
// hash while it streams into a temp file; only verified bytes are renamed
// to dst. The download ends, transiently, at its deadline or after the idle
// timeout without a byte.
func (f *fetcher) download(ctx context.Context, src source, p Package, h, dst string) error {
	limit := f.limit(p)
	deadline := downloadDeadline(f.base, limit, f.minRate)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	overall := time.AfterFunc(deadline, func() {
		cancel(fmt.Errorf("%w: %s for %d bytes (download_base_timeout %s + size / download_min_rate %d B/s)",
			errDownloadDeadline, deadline.Round(time.Millisecond), limit, f.base, f.minRate))
	})
	defer overall.Stop()
	idle := time.AfterFunc(f.idle, func() {
		cancel(fmt.Errorf("%w: no data for %s (download_idle_timeout)", errDownloadStalled, f.idle))
	})
	defer idle.Stop()

	rc, err := f.open(ctx, src, p.Size, limit)
	if err != nil {
		return interrupted(ctx, err, 0)
	}
	defer rc.Close()
	tmp, err := atomicfile.Create(dst, 0o600)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer tmp.Discard() // no-op after the commit
	hasher := sha256.New()
	body := &progressReader{r: rc, idle: idle, every: f.idle}
	n, err := io.Copy(io.MultiWriter(tmp, hasher), io.LimitReader(body, limit+1))
	if err != nil {
		return interrupted(ctx, fmt.Errorf("after %d bytes: %w", n, err), n)
	}
	switch {
	case n > limit && p.Size > 0:
		return fmt.Errorf("%w: more than package_size %d bytes", errSizeMismatch, limit)
	case n > limit:
		return fmt.Errorf("%w: more than the maximum of %d bytes", errSizeMismatch, limit)
	case p.Size > 0 && n != p.Size:
		return fmt.Errorf("%w: got %d bytes, package_size is %d", errSizeMismatch, n, p.Size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != h {
		return fmt.Errorf("%w: sha256 is %s", errHashMismatch, got)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// interrupted reports why ctx ended (download deadline, stall, caller)
// instead of the read error that followed, when it did end.
func interrupted(ctx context.Context, err error, n int64) error {
	cause := context.Cause(ctx)
	switch {
	case cause == nil:
		return err
	case errors.Is(cause, errDownloadDeadline), errors.Is(cause, errDownloadStalled):
		return fmt.Errorf("%w; %d bytes received", cause, n)
	default:
		return fmt.Errorf("interrupted: %w", cause)
	}
}

// progressReader pushes the idle timer back on every byte.
type progressReader struct {
	r     io.Reader
	idle  *time.Timer
	every time.Duration
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(r.every)
	}
	return n, err
}

// open starts a download; size is package_size (0 when unknown), limit the
// byte cap.
func (f *fetcher) open(ctx context.Context, src source, size, limit int64) (io.ReadCloser, error) {
	switch strings.ToLower(src.u.Scheme) {
	case "http", "https":
		return f.openHTTP(ctx, src.u, size, limit)
	case "ipfs":
		if f.ipfs == nil {
			return nil, errIPFSNotConfigured
		}
		rc, err := f.ipfs(ctx, src.cid, limit)
		if err != nil {
			return nil, fmt.Errorf("ipfs fetch %s: %w", src.cid, err)
		}
		return rc, nil
	case "file":
		fh, err := os.Open(src.u.Path)
		if err != nil {
			return nil, err
		}
		return fh, nil
	}
	return nil, fmt.Errorf("unsupported scheme %q", src.u.Scheme) // parseSource let it through: a bug
}

func (f *fetcher) openHTTP(ctx context.Context, u *url.URL, size, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("GET: %s", resp.Status)
	case size > 0 && resp.ContentLength >= 0 && resp.ContentLength != size:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d, package_size is %d", errSizeMismatch, resp.ContentLength, size)
	case resp.ContentLength > limit:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the maximum of %d bytes", errSizeMismatch, resp.ContentLength, limit)
	}
	return resp.Body, nil
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
