package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// mutating wraps handlers that change anything. When a token is configured
// (always, for a non-loopback address: see Config.Validate) the request
// must carry "Authorization: Bearer <token>".
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="synapse-p2p"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		h(w, r)
	}
}
