package httpapi

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// CSRFHeader is the header a web page must send, with the value "1", for
// its mutating requests to be accepted (see mutating). The dashboard's own
// requests carry it.
const CSRFHeader = "X-Synapse-Request"

// mutating wraps handlers that change anything. When a token is configured
// (always, for a non-loopback address: see Config.Validate) the request
// must carry "Authorization: Bearer <token>".
//
// Cross-site request forgery: browsers send an Origin header with every
// POST, and curl, the CLI and server-side clients do not. A request without
// Origin is therefore not from a web page and passes. A request with Origin
// passes only when it is the node's own dashboard: Origin names this very
// server (scheme http or https, the host and port of the Host header, which
// hostPolicy already checked), Sec-Fetch-Site, when the browser sends it,
// is "same-origin", and it carries "X-Synapse-Request: 1". A foreign page
// cannot meet that: a form cannot set headers, and a cross-origin fetch with
// a custom header needs a CORS preflight, which this server never grants
// (it sends no Access-Control-Allow-* header at all); its Origin would not
// match either. A DNS-rebinding page, which could be same-origin, is
// refused earlier for its Host.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if msg := sameOriginProblem(r, origin); msg != "" {
				writeError(w, r, http.StatusForbidden, msg)
				return
			}
		}
		if s.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="synapse-p2p"`)
				writeError(w, r, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		h(w, r)
	}
}

// sameOriginProblem says why a mutating request from a web page (one with
// an Origin header) is refused, or "" when it comes from this node's own
// dashboard.
func sameOriginProblem(r *http.Request, origin string) string {
	const refused = "requests from other web pages are refused: "
	if !sameOrigin(origin, r.Host) {
		return refused + "the Origin header does not name this node; use the node's own dashboard, curl, the CLI or a server-side client"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return refused + "Sec-Fetch-Site is " + site + ", not same-origin"
	}
	if r.Header.Get(CSRFHeader) != "1" {
		return refused + "a request from the dashboard must carry the header " + CSRFHeader + ": 1"
	}
	return ""
}

// sameOrigin reports whether origin (scheme://host[:port]) names the
// server the request was sent to, whose Host header is host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	oh, op, ok := splitHostPort(u.Host)
	if !ok || oh == "" {
		return false
	}
	hh, hp, ok := splitHostPort(host)
	if !ok || hh == "" {
		return false
	}
	def := "80"
	if u.Scheme == "https" {
		def = "443"
	}
	if op == "" {
		op = def
	}
	if hp == "" {
		hp = def
	}
	return oh == hh && op == hp
}
