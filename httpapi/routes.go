package httpapi

import (
	"net/http"
	"sort"

	ma "github.com/multiformats/go-multiaddr"
)

// apiRoute is one endpoint of the API; Routes lists them for documentation
// and the OpenAPI contract test.
type apiRoute struct {
	Method   string
	Path     string
	Mutating bool
}

// Routes is every endpoint the server handles.
func Routes() []apiRoute {
	var out []apiRoute
	for _, r := range (&Server{}).table() {
		out = append(out, apiRoute{Method: r.method, Path: r.path, Mutating: r.mutating})
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

// PeerJSON is a peer as the API shows it. Connection, Transport, Relay
// and Conns are there when the node reports its connections (NetInfo).
type PeerJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	// Relayed is true when every connection to the peer goes through a
	// circuit relay (set only in GET /peers).
	Relayed bool `json:"relayed,omitempty"`
	// Connection is "direct" when a connection to the peer is direct,
	// "relayed" when the peer is reached only through a relay.
	Connection string `json:"connection,omitempty"`
	// Transport is the transport of the connection new streams use (tcp,
	// quic-v1, …; for a relayed connection, the one to the relay), and
	// Relay the relay's peer ID when that connection is relayed.
	Transport string     `json:"transport,omitempty"`
	Relay     string     `json:"relay,omitempty"`
	Conns     []ConnJSON `json:"conns,omitempty"`
}

// ConnJSON is one connection to a peer.
type ConnJSON struct {
	// Addr is the peer's side of the connection.
	Addr string `json:"addr"`
	// Direction is inbound (the peer dialled) or outbound.
	Direction string `json:"direction"`
	Relayed   bool   `json:"relayed"`
	Relay     string `json:"relay,omitempty"`
	Transport string `json:"transport"`
	// Limited is true when the relay caps the connection's duration and
	// data; only gossip sync and raft use such a connection.
	Limited bool `json:"limited"`
	// Opened is when the connection was established (RFC 3339, UTC).
	Opened string `json:"opened"`
}

// Reachability is what a node knows of how other nodes reach it.
type Reachability struct {
	// Reachability is public, private or unknown (AutoNAT, or the
	// configured p2p.reachability).
	Reachability string `json:"reachability"`
	// ReachableAddrs and UnreachableAddrs are the addresses AutoNAT v2
	// checked one by one.
	ReachableAddrs   []string `json:"reachable_addrs"`
	UnreachableAddrs []string `json:"unreachable_addrs"`
	// RelayAddrs are this node's addresses through the relays it holds a
	// reservation at; Relays are those relays' peer IDs.
	RelayAddrs []string `json:"relay_addrs"`
	Relays     []string `json:"relays"`
	// RelayService is true while this node relays for others.
	RelayService bool `json:"relay_service"`
}

// IDJSON answers GET /id: the node's ID and announced addresses, and its
// reachability when the node reports it (NetInfo).
type IDJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	*Reachability
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
		out := IDJSON{ID: s.deps.Node.ID().String(), Addrs: addrs}
		if ni, ok := s.deps.Node.(NetInfo); ok {
			reach := ni.Reachability()
			out.Reachability = &reach
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) handlePeers() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ni, ok := s.deps.Node.(NetInfo); ok {
			out := ni.PeerConns()
			if out == nil {
				out = []PeerJSON{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "peers": out})
			return
		}
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
