package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The dashboard is one HTML page with its script, style sheet and icon,
// embedded in the binary: no build step, no CDN. The page reads the same
// JSON endpoints as curl does, follows GET /events for live updates, and
// sends its actions with the CSRF header (auth.go) and, when the node has
// a token, the bearer token the operator types in.
//
//go:embed dashboard
var dashboardFS embed.FS

// contentTypes of the embedded assets, by extension. An asset of any other
// type is a build error (newDashboard panics), so the server never guesses.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// pageSecurityHeaders go with the page and its assets: only this origin's
// scripts, styles, images and connections; no framing (the page has
// action buttons, so no clickjacking); no referrer leaks.
var pageSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// asset is one embedded file ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// dashboard is the page and its assets. Assets are served under names that
// carry a hash of their content (app.<8 hex>.js), so they can be cached for
// good; the page itself names them and is revalidated on every load.
type dashboard struct {
	index  asset
	assets map[string]asset // hashed name -> asset
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// newDashboard reads the embedded files, names the assets by hash and
// renders the page. tokenRequired tells the page to ask for the bearer
// token before the first action.
func newDashboard(tokenRequired bool) *dashboard {
	d := &dashboard{assets: map[string]asset{}}
	entries, err := fs.ReadDir(dashboardFS, "dashboard")
	if err != nil {
		panic("httpapi: embedded dashboard: " + err.Error())
	}
	var pairs []string
	for _, e := range entries {
		name := e.Name()
		if name == "index.html" || e.IsDir() {
			continue
		}
		ext := path.Ext(name)
		ct, ok := contentTypes[ext]
		if !ok {
			panic("httpapi: embedded dashboard asset of unknown type: " + name)
		}
		b, err := dashboardFS.ReadFile("dashboard/" + name)
		if err != nil {
			panic("httpapi: embedded dashboard: " + err.Error())
		}
		sum := sha256.Sum256(b)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		d.assets[hashed] = asset{body: b, contentType: ct, etag: etagOf(b)}
		pairs = append(pairs, "{{"+name+"}}", "/assets/"+hashed)
	}
	page, err := dashboardFS.ReadFile("dashboard/index.html")
	if err != nil {
		panic("httpapi: embedded dashboard: " + err.Error())
	}
	required := "false"
	if tokenRequired {
		required = "true"
	}
	pairs = append(pairs, "{{token_required}}", required)
	html := strings.NewReplacer(pairs...).Replace(string(page))
	if i := strings.Index(html, "{{"); i >= 0 {
		panic("httpapi: dashboard page names an asset that does not exist: " + html[i:min(len(html), i+40)])
	}
	d.index = asset{body: []byte(html), contentType: "text/html; charset=utf-8", etag: etagOf([]byte(html))}
	return d
}

// AssetNames lists the hashed names under /assets/ (for tests).
func (s *Server) AssetNames() []string {
	var out []string
	for name := range s.page.assets {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func serveAsset(w http.ResponseWriter, r *http.Request, a asset, cacheControl string) {
	h := w.Header()
	for k, v := range pageSecurityHeaders {
		h.Set(k, v)
	}
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", a.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// etagMatches reads an If-None-Match list ("*" or comma-separated tags,
// weak ones compared by their opaque part).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// handleDashboard serves the page at /. It is revalidated on every load
// (no-cache with an ETag), so a node upgraded to a new binary serves the
// new asset names at once.
func (s *Server) handleDashboard() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, s.page.index, "no-cache")
	}
}

// handleAsset serves an embedded asset by its hashed name, cacheable for a
// year; any other name is a 404 (there is no directory listing).
func (s *Server) handleAsset() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.page.assets[r.PathValue("name")]
		if !ok {
			writeError(w, r, http.StatusNotFound, "no such asset: "+r.URL.Path)
			return
		}
		serveAsset(w, r, a, "public, max-age=31536000, immutable")
	}
}
