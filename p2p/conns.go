package p2p

import (
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Conn describes one open connection to a peer.
type Conn struct {
	// Addr is the peer's side of the connection.
	Addr ma.Multiaddr
	// Inbound is true when the peer opened the connection.
	Inbound bool
	// Relayed is true for a connection through a relay (/p2p-circuit);
	// Relay is that relay. Transport is then the transport to the relay.
	Relayed bool
	Relay   peer.ID
	// Transport is the transport protocol: tcp, quic-v1, webtransport, …
	Transport string
	// Limited is true when the relay caps the connection's duration and
	// data: only protocols allowed on limited connections use it.
	Limited bool
	// Opened is when the connection was established.
	Opened time.Time
}

// PeerConns are the open connections to one peer, oldest first.
type PeerConns struct {
	ID    peer.ID
	Conns []Conn
}

// Direct reports whether at least one connection to the peer is direct.
func (p PeerConns) Direct() bool {
	return slices.ContainsFunc(p.Conns, func(c Conn) bool { return !c.Relayed })
}

// Best is the connection libp2p prefers for new streams: a direct one
// over a relayed one, an unlimited over a limited one, then the oldest.
func (p PeerConns) Best() (Conn, bool) {
	if len(p.Conns) == 0 {
		return Conn{}, false
	}
	best := p.Conns[0]
	for _, c := range p.Conns[1:] {
		if (best.Relayed && !c.Relayed) || (best.Limited && !c.Limited) {
			best = c
		}
	}
	return best, true
}

// PeerConns lists every peer with an open connection — direct, relayed
// or both — with its connections, sorted by peer ID.
func (h *Host) PeerConns() []PeerConns {
	var out []PeerConns
	for _, id := range h.Network().Peers() {
		pc := PeerConns{ID: id}
		for _, c := range h.Network().ConnsToPeer(id) {
			pc.Conns = append(pc.Conns, connInfo(c))
		}
		if len(pc.Conns) == 0 {
			continue // closed since Peers()
		}
		slices.SortStableFunc(pc.Conns, func(a, b Conn) int { return a.Opened.Compare(b.Opened) })
		out = append(out, pc)
	}
	slices.SortFunc(out, func(a, b PeerConns) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func connInfo(c network.Conn) Conn {
	st := c.Stat()
	addr := c.RemoteMultiaddr()
	relay, relayed := relayOf(addr)
	if !relayed && isRelayed(addr) {
		relayed = true // a circuit address without the relay's ID
	}
	return Conn{
		Addr:      addr,
		Inbound:   st.Direction == network.DirInbound,
		Relayed:   relayed,
		Relay:     relay,
		Transport: transportOf(addr),
		Limited:   st.Limited,
		Opened:    st.Opened,
	}
}

// transportOf names the transport of a multiaddr (for a relay address,
// of its first hop): the last of quic-v1, webtransport, webrtc-direct,
// ws, wss before any /p2p-circuit, else tcp or udp.
func transportOf(a ma.Multiaddr) string {
	name := ""
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_CIRCUIT:
			return orUnknown(name)
		case ma.P_TCP:
			name = "tcp"
		case ma.P_UDP:
			name = "udp"
		case ma.P_QUIC:
			name = "quic"
		case ma.P_QUIC_V1, ma.P_WEBTRANSPORT, ma.P_WEBRTC_DIRECT, ma.P_WS, ma.P_WSS:
			name = c.Protocol().Name
		}
	}
	return orUnknown(name)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
