package node

import (
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// nodeAPI is the node as the REST API's Node backend, with the optional
// NetInfo capability: reachability for GET /id, connections for GET /peers.
type nodeAPI struct{ *Node }

var (
	_ httpapi.Node    = nodeAPI{}
	_ httpapi.NetInfo = nodeAPI{}
)

// Reachability reports the host's AutoNAT verdict and relay reservations.
func (a nodeAPI) Reachability() httpapi.Reachability {
	st := a.host.NATStatus()
	out := httpapi.Reachability{
		Reachability:     st.Reachability,
		ReachableAddrs:   addrStrings(st.ReachableAddrs),
		UnreachableAddrs: addrStrings(st.UnreachableAddrs),
		RelayAddrs:       addrStrings(st.RelayAddrs),
		Relays:           []string{},
		RelayService:     st.RelayService,
	}
	for _, r := range st.Relays {
		out.Relays = append(out.Relays, r.String())
	}
	return out
}

// PeerConns lists the connected peers with each connection: direct or
// relayed, transport, limits.
func (a nodeAPI) PeerConns() []httpapi.PeerJSON {
	pcs := a.host.PeerConns()
	out := make([]httpapi.PeerJSON, 0, len(pcs))
	for _, pc := range pcs {
		pj := httpapi.PeerJSON{ID: pc.ID.String(), Addrs: []string{}, Connection: "relayed"}
		if pc.Direct() {
			pj.Connection = "direct"
		} else {
			pj.Relayed = true // the dashboard's flag
		}
		if best, ok := pc.Best(); ok {
			pj.Transport = best.Transport
			if best.Relayed && best.Relay != "" {
				pj.Relay = best.Relay.String()
			}
		}
		for _, c := range pc.Conns {
			pj.Addrs = append(pj.Addrs, c.Addr.String())
			pj.Conns = append(pj.Conns, connJSON(c))
		}
		out = append(out, pj)
	}
	return out
}

func connJSON(c p2p.Conn) httpapi.ConnJSON {
	cj := httpapi.ConnJSON{
		Addr:      c.Addr.String(),
		Direction: "outbound",
		Relayed:   c.Relayed,
		Transport: c.Transport,
		Limited:   c.Limited,
		Opened:    c.Opened.UTC().Format(time.RFC3339),
	}
	if c.Inbound {
		cj.Direction = "inbound"
	}
	if c.Relay != "" {
		cj.Relay = c.Relay.String()
	}
	return cj
}

func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}
