package httpapi

import (
	"net/http"
	"sort"

	ma "github.com/multiformats/go-multiaddr"
)

// Route is one endpoint of the API; Routes lists them for documentation
// and the OpenAPI contract test.
type Route struct {
	Method   string
	Path     string
	Mutating bool
}

// Routes is every endpoint the server handles.
func Routes() []Route {
	var out []Route
	for _, r := range (&Server{}).table() {
		out = append(out, Route{Method: r.method, Path: r.path, Mutating: r.mutating})
	}
	return out
}

type route struct {
	method, path string
	mutating     bool
	handler      func(*Server) http.HandlerFunc
}

func (s *Server) table() []route {
	return []route{
		{"GET", "/healthz", false, (*Server).handleHealth},
		{"GET", "/id", false, (*Server).handleID},
		{"GET", "/peers", false, (*Server).handlePeers},
		{"GET", "/metrics", false, (*Server).handleMetrics},
		{"POST", "/upgrades/propose", true, (*Server).handlePropose},
		{"POST", "/proposals/{id}/vote", true, (*Server).handleVote},
		{"GET", "/proposals", false, (*Server).handleProposals},
		{"GET", "/proposals/{id}", false, (*Server).handleProposal},
		{"POST", "/upgrades/{id}/test", true, (*Server).handleTest},
		{"GET", "/upgrades/status", false, (*Server).handleStatus},
		{"GET", "/upgrades/history", false, (*Server).handleHistory},
		{"POST", "/upgrades/{id}/rollback", true, (*Server).handleRollback},
		{"POST", "/upgrades/resume", true, (*Server).handleResume},
		{"GET", "/execution-log", false, (*Server).handleExecutionLog},
		{"GET", "/validators", false, (*Server).handleValidators},
		{"GET", "/state", false, (*Server).handleState},
		{"POST", "/packages", true, (*Server).handleAddPackage},
		{"GET", "/fetches", false, (*Server).handleFetches},
		{"GET", "/events", false, (*Server).handleEvents},
		{"GET", "/", false, (*Server).handleDashboard},
		{"GET", "/assets/{name}", false, (*Server).handleAsset},
	}
}

func (s *Server) routes() {
	for _, r := range s.table() {
		h := r.handler(s)
		if r.mutating {
			h = s.mutating(h)
		}
		path := r.path
		if path == "/" { // the dashboard is the root only, not every unknown path
			path = "/{$}"
		}
		s.mux.HandleFunc(r.method+" "+path, h)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// PeerJSON is a peer as the API shows it.
type PeerJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	// Relayed is true when every connection to the peer goes through a
	// circuit relay (set only in GET /peers).
	Relayed bool `json:"relayed,omitempty"`
}

func (s *Server) handleHealth() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "peer_id": s.deps.Node.ID().String()})
	}
}

func (s *Server) handleID() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addrs := []string{}
		for _, a := range s.deps.Node.Addrs() {
			addrs = append(addrs, a.String())
		}
		writeJSON(w, http.StatusOK, PeerJSON{ID: s.deps.Node.ID().String(), Addrs: addrs})
	}
}

func (s *Server) handlePeers() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		peers := s.deps.Node.Peers()
		out := make([]PeerJSON, 0, len(peers))
		for _, p := range peers {
			pj := PeerJSON{ID: p.ID.String(), Addrs: []string{}}
			relayed := len(p.Addrs) > 0
			for _, a := range p.Addrs {
				pj.Addrs = append(pj.Addrs, a.String())
				if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
					relayed = false
				}
			}
			pj.Relayed = relayed
			out = append(out, pj)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "peers": out})
	}
}

func (s *Server) handleMetrics() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Metrics == nil {
			writeError(w, r, http.StatusServiceUnavailable, "metrics are not enabled on this node")
			return
		}
		s.deps.Metrics.ServeHTTP(w, r)
	}
}
