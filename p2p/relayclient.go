package p2p

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// AutoRelay tuning. libp2p's defaults suit the public IPFS network, where
// a node sees hundreds of relay candidates: wait up to 3 minutes for 4 of
// them, and back off an hour from a relay that refused a reservation. A
// synapse network may have one or two public nodes, and a bootstrap node
// refuses reservations until its own AutoNAT finds it public, so a private
// node takes the first candidate and tries a refusing one again soon.
const (
	relayMinCandidates = 1
	relayBackoff       = time.Minute
	relayMinInterval   = 10 * time.Second
	relayWanted        = 2
)

// relayCandidates is AutoRelay's peer source: the static relays when
// configured; otherwise bootstrap peers first, then connected peers that
// offer the relay protocol, then peers of the DHT routing table. AutoRelay
// itself checks that a candidate relays before asking for a reservation.
func (h *Host) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, max(num, 0))
	defer close(out)
	seen := map[peer.ID]bool{h.ID(): true}
	add := func(ai peer.AddrInfo) {
		if len(out) >= num || seen[ai.ID] {
			return
		}
		ai.Addrs = append(slices.Clone(ai.Addrs), h.Peerstore().Addrs(ai.ID)...)
		ai.Addrs = ma.Unique(ai.Addrs)
		if len(ai.Addrs) == 0 {
			return
		}
		seen[ai.ID] = true
		out <- ai
	}
	if len(h.staticRelays) > 0 {
		for _, ai := range h.staticRelays {
			add(ai)
		}
		return out
	}
	for _, ai := range h.bootstrap {
		add(ai)
	}
	for _, p := range h.Network().Peers() {
		if ok, _ := h.Peerstore().SupportsProtocols(p, circuitproto.ProtoIDv2Hop); len(ok) > 0 {
			add(peer.AddrInfo{ID: p})
		}
	}
	for _, p := range h.DHT.RoutingTable().ListPeers() {
		add(peer.AddrInfo{ID: p})
	}
	return out
}
