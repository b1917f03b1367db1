package httpapi_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

func getPage(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

// The page names its assets by content hash; each is served with its type,
// cached for good, and revalidated by ETag. The page itself is revalidated
// on every load. Unknown assets and directory paths are 404s.
func TestDashboardAssets(t *testing.T) {
	ts, _ := newTestServer(t, "")
	resp, page := getPage(t, ts.URL+"/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %s", resp.StatusCode, page)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("page content type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("page Cache-Control %q, want no-cache", cc)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", resp.Header)
	}
	if strings.Contains(page, "{{") || !strings.Contains(page, `content="false"`) {
		t.Errorf("page not rendered (placeholders or token flag): %.300s", page)
	}
	if m := regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).FindString(page); m != "" {
		t.Errorf("page loads something from elsewhere (no CDN allowed): %s", m)
	}
	etag := resp.Header.Get("ETag")
	if r, _ := getPage(t, ts.URL+"/", map[string]string{"If-None-Match": etag}); r.StatusCode != http.StatusNotModified {
		t.Errorf("page with matching If-None-Match: %d, want 304", r.StatusCode)
	}

	refs := assetRef.FindAllStringSubmatch(page, -1)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	for _, m := range refs {
		seen[m[1]] = true
	}
	for _, ext := range []string{".js", ".css", ".svg"} {
		found := false
		for p := range seen {
			found = found || strings.HasSuffix(p, ext)
		}
		if !found {
			t.Errorf("page references no %s asset: %v", ext, seen)
		}
	}
	for p := range seen {
		if !regexp.MustCompile(`^/assets/[a-z]+\.[0-9a-f]{8}\.(js|css|svg)$`).MatchString(p) {
			t.Errorf("asset %s is not named by hash", p)
		}
		r, body := getPage(t, ts.URL+p, nil)
		if r.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d (%d bytes)", p, r.StatusCode, len(body))
			continue
		}
		ext := p[strings.LastIndex(p, "."):]
		if ct := r.Header.Get("Content-Type"); ct != types[ext] {
			t.Errorf("%s: content type %q, want %q", p, ct, types[ext])
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", p, cc)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		if r2, _ := getPage(t, ts.URL+p, map[string]string{"If-None-Match": `"x", ` + r.Header.Get("ETag")}); r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s with matching ETag: %d, want 304", p, r2.StatusCode)
		}
	}

	for _, p := range []string{"/assets/", "/assets", "/assets/app.js", "/assets/app.00000000.js", "/assets/../go.mod",
		"/assets/%2e%2e%2fserver.go", "/dashboard/", "/dashboard/app.js", "/index.html", "/assets/index.html"} {
		r, body := getPage(t, ts.URL+p, nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404: %.200s", p, r.StatusCode, body)
		}
		if strings.Contains(body, "<a href") || strings.Contains(body, "<pre>") {
			t.Errorf("GET %s looks like a directory listing: %.200s", p, body)
		}
	}
	// Only GET (and HEAD) serve the page.
	if code, _ := do(t, ts, "POST", "/", "", "application/json", []byte(`{}`)); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("POST /: %d", code)
	}
}

// A node with a token tells the page to ask for it before acting.
func TestDashboardTokenFlag(t *testing.T) {
	ts, _ := newTestServer(t, "s3cret")
	_, page := getPage(t, ts.URL+"/", nil)
	if !strings.Contains(page, `<meta name="synapse-token-required" content="true">`) {
		t.Fatalf("page does not say a token is required")
	}
	// Reading the page needs no token.
	if r, _ := getPage(t, ts.URL+"/", nil); r.StatusCode != 200 {
		t.Fatalf("page with token configured: %d", r.StatusCode)
	}
}

func TestAssetNames(t *testing.T) {
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.AssetNames()); n != 3 {
		t.Fatalf("%d assets: %v", n, s.AssetNames())
	}
}

// The script reaches the page's static elements by ID ($('#…')): every
// one it names exists in the page as served, and every form control of
// the page has a <label for> (the propose form's hidden parts too, which
// the page shows by the kind of proposal). The browser test checks the
// rendered page; this catches a renamed ID without a browser.
func TestDashboardScriptAndPageAgree(t *testing.T) {
	ts, _ := newTestServer(t, "")
	_, page := getPage(t, ts.URL+"/", nil)
	var script string
	for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
		if strings.HasSuffix(m[1], ".js") {
			_, script = getPage(t, ts.URL+m[1], nil)
		}
	}
	if script == "" {
		t.Fatal("page names no script")
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if ids[m[1]] {
			t.Errorf("id %q appears twice in the page", m[1])
		}
		ids[m[1]] = true
	}
	named := regexp.MustCompile(`\$\('#([A-Za-z0-9_-]+)'\)`).FindAllStringSubmatch(script, -1)
	if len(named) < 20 {
		t.Fatalf("the script names %d elements; the pattern no longer matches how it finds them", len(named))
	}
	missing := map[string]bool{}
	for _, m := range named {
		if !ids[m[1]] && !missing[m[1]] {
			missing[m[1]] = true
			t.Errorf("the script uses #%s, which the page does not have", m[1])
		}
	}
	for _, want := range []string{"p-type", "p-target", "p-when", "p-activate-at", "p-after", "p-after-unit"} {
		if !ids[want] {
			t.Errorf("the propose form has no #%s", want)
		}
	}
	labelled := map[string]bool{}
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !ids[m[1]] {
			t.Errorf("a label is for #%s, which does not exist", m[1])
		}
		labelled[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`<(?:input|select|textarea)\s[^>]*\bid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !labelled[m[1]] {
			t.Errorf("control #%s has no label", m[1])
		}
	}
}
