package httpapi

import (
	"net/http"
	"sort"
)

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /id", s.handleID)
	s.mux.HandleFunc("GET /peers", s.handlePeers)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// PeerJSON is a peer as the API shows it.
type PeerJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "peer_id": s.backend.ID().String()})
}

func (s *Server) handleID(w http.ResponseWriter, r *http.Request) {
	addrs := []string{}
	for _, a := range s.backend.Addrs() {
		addrs = append(addrs, a.String())
	}
	writeJSON(w, http.StatusOK, PeerJSON{ID: s.backend.ID().String(), Addrs: addrs})
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	peers := s.backend.Peers()
	out := make([]PeerJSON, 0, len(peers))
	for _, p := range peers {
		pj := PeerJSON{ID: p.ID.String(), Addrs: []string{}}
		for _, a := range p.Addrs {
			pj.Addrs = append(pj.Addrs, a.String())
		}
		out = append(out, pj)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "peers": out})
}
