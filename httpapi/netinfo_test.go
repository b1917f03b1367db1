package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

const relayPeer = "12D3KooWJQJTGPmCmKUzJ4ZC7XvdfTSLTRYYkc8sZQm48kJPKqsy"

// netBackend is a Node with the NetInfo capability: a private node with a
// reservation at one relay, reaching testPeer only through it.
type netBackend struct{ fakeBackend }

var _ httpapi.NetInfo = netBackend{}

func (netBackend) Reachability() httpapi.Reachability {
	return httpapi.Reachability{
		Reachability:     "private",
		ReachableAddrs:   []string{},
		UnreachableAddrs: []string{"/ip4/203.0.113.20/udp/4001/quic-v1"},
		RelayAddrs:       []string{"/ip4/203.0.113.10/udp/4001/quic-v1/p2p/" + relayPeer + "/p2p-circuit"},
		Relays:           []string{relayPeer},
	}
}

func (netBackend) PeerConns() []httpapi.PeerJSON {
	addr := "/ip4/203.0.113.10/udp/4001/quic-v1/p2p/" + relayPeer + "/p2p-circuit"
	return []httpapi.PeerJSON{{
		ID: testPeer, Addrs: []string{addr}, Connection: "relayed", Transport: "quic-v1", Relay: relayPeer,
		Conns: []httpapi.ConnJSON{{Addr: addr, Direction: "outbound", Relayed: true, Relay: relayPeer,
			Transport: "quic-v1", Limited: true, Opened: "2026-01-01T00:00:00Z"}},
	}}
}

func TestIDAndPeersShowReachability(t *testing.T) {
	doc := loadOpenAPI(t)
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: netBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()

	code, body := do(t, ts, "GET", "/id", "", "", nil)
	check(t, doc, "GET", "/id", code, body)
	var id httpapi.IDJSON
	if err := json.Unmarshal(body, &id); err != nil || id.Reachability == nil {
		t.Fatalf("/id: %s (%v)", body, err)
	}
	if id.ID != testPeer || id.Reachability.Reachability != "private" || len(id.RelayAddrs) != 1 || id.Relays[0] != relayPeer {
		t.Fatalf("/id: %s", body)
	}

	code, body = do(t, ts, "GET", "/peers", "", "", nil)
	check(t, doc, "GET", "/peers", code, body)
	var peers struct {
		Count int                `json:"count"`
		Peers []httpapi.PeerJSON `json:"peers"`
	}
	if err := json.Unmarshal(body, &peers); err != nil || peers.Count != 1 {
		t.Fatalf("/peers: %s (%v)", body, err)
	}
	p := peers.Peers[0]
	if p.Connection != "relayed" || p.Transport != "quic-v1" || p.Relay != relayPeer || len(p.Conns) != 1 || !p.Conns[0].Limited {
		t.Fatalf("/peers: %s", body)
	}
}

// A Node without NetInfo answers with IDs and addresses only.
func TestIDAndPeersWithoutNetInfo(t *testing.T) {
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, id := get(t, s, "/id")
	if _, ok := id["reachability"]; ok {
		t.Fatalf("/id invents a reachability: %v", id)
	}
	_, peers := get(t, s, "/peers")
	p := peers["peers"].([]any)[0].(map[string]any)
	if _, ok := p["connection"]; ok {
		t.Fatalf("/peers invents a connection kind: %v", p)
	}
}
