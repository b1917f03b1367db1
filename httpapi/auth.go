package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// mutating wraps handlers that change anything. When a token is configured
// (always, for a non-loopback address: see Config.Validate) the request
// must carry "Authorization: Bearer <token>".
//
// Requests carrying an Origin header are refused: browsers send it with
// every cross-site (and same-site) POST, curl, the CLI and server-side
// clients do not, and this API has no web UI. That stops a web page from
// using the visitor's browser to propose, vote or roll back against a node
// on localhost (CSRF), while curl -d works as in the seed's examples.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			writeError(w, r, http.StatusForbidden, "requests from web pages are refused (Origin header set); use curl, the CLI or a server-side client")
			return
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
