package p2p

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// ReachabilityUnknown is NATStatus.Reachability before AutoNAT decided (the
// other values are ReachabilityPublic and ReachabilityPrivate).
const ReachabilityUnknown = "unknown"

// NATStatus is what the host knows of how others reach it.
type NATStatus struct {
	// Reachability is public, private or unknown: AutoNAT's verdict for
	// the node as a whole (or the configured p2p.reachability).
	Reachability string
	// ReachableAddrs and UnreachableAddrs are the addresses AutoNAT v2
	// confirmed or refuted one by one.
	ReachableAddrs, UnreachableAddrs []ma.Multiaddr
	// RelayAddrs are the relay addresses (…/p2p/<relay>/p2p-circuit) of
	// the reservations this node holds; Relays are those relays.
	RelayAddrs []ma.Multiaddr
	Relays     []peer.ID
	// RelayService is true while this node relays for others (relay
	// service enabled and the node public).
	RelayService bool
}

// NATStats count NAT traversal events since the host started.
type NATStats struct {
	// HolePunchAttempts counts DCUtR hole-punch attempts (each retry, on
	// both the initiating and the answering side); HolePunchSuccesses
	// those that produced a direct connection, HolePunchFailures those
	// that did not.
	HolePunchAttempts, HolePunchSuccesses, HolePunchFailures uint64
	// DirectDials counts relayed peers this node dialled directly, before
	// any hole punch, with DirectDialSuccesses of them connecting.
	DirectDials, DirectDialSuccesses uint64
	// RelayReservations counts reservations this node obtained at relays
	// (a new relay, not a refresh).
	RelayReservations uint64
	// RelayServiceReservations counts reservations this node granted as a
	// relay (not refreshes), RelayServiceCircuits the relayed connections
	// it opened for others, RelayServiceBytes the bytes it relayed.
	RelayServiceReservations, RelayServiceCircuits, RelayServiceBytes uint64
}

// natState holds the host's NAT status and counters; libp2p's services
// report into it through the tracers below.
type natState struct {
	mu     sync.Mutex
	status NATStatus
	// forced is Config.Reachability when not auto; v1 is AutoNAT v1's
	// verdict for the node as a whole.
	forced, v1 string

	hpAttempts, hpSuccesses, hpFailures atomic.Uint64
	directDials, directDialsOK          atomic.Uint64
	reservations                        atomic.Uint64
	served, circuits, relayedBytes      atomic.Uint64
	relayActive                         atomic.Bool

	log *slog.Logger
}

func newNATState(cfg Config, log *slog.Logger) *natState {
	st := &natState{status: NATStatus{Reachability: ReachabilityUnknown}, v1: ReachabilityUnknown, log: log}
	if cfg.Reachability != ReachabilityAuto {
		st.forced = cfg.Reachability
		st.status.Reachability = cfg.Reachability
	}
	return st
}

// reachability decides whether the node is public. A configured value
// wins. Otherwise an address that AutoNAT v2 confirmed reachable makes the
// node public, whatever v1 says: v1 only asks peers that are public
// themselves, so in a network whose one public node is the bootstrap node
// nobody can ever confirm that node, while v2 asks any peer — here the
// private nodes, which can dial out — and checks each address. Without a
// v2 verdict, v1's stands. Callers hold mu.
func (st *natState) reachability() string {
	switch {
	case st.forced != "":
		return st.forced
	case len(st.status.ReachableAddrs) > 0:
		return ReachabilityPublic
	default:
		return st.v1
	}
}

// natOptions are the libp2p options for AutoNAT, AutoRelay and hole
// punching. relayCandidates feeds AutoRelay. The relay service is not
// among them: libp2p would start it only on AutoNAT v1's word, so the host
// runs it itself (relayService) on its own reachability decision.
func natOptions(cfg Config, st *natState, relayCandidates autorelay.PeerSource) []libp2p.Option {
	var opts []libp2p.Option
	if cfg.AutoNAT {
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableAutoNATv2(),
			// libp2p's black-hole detectors refuse AutoNAT v2 dial-backs
			// over UDP (QUIC) and IPv6 until the node has made 100 dials of
			// that kind with 5 successes. A synapse network has tens of
			// peers, not the thousands of the IPFS network, so a node
			// would go on refusing to check its peers' QUIC addresses for
			// a long time. Without the detectors a node on a network that
			// blocks UDP spends a little time on QUIC dials that fail
			// (the dialler tries TCP alongside), and AutoNAT v2 needs two
			// concurring answers before it calls an address unreachable.
			libp2p.UDPBlackHoleSuccessCounter(nil),
			libp2p.IPv6BlackHoleSuccessCounter(nil),
		)
	}
	switch cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.RelayClient.Enabled {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(relayCandidates,
			autorelay.WithMinCandidates(relayMinCandidates),
			autorelay.WithBackoff(relayBackoff),
			autorelay.WithMinInterval(relayMinInterval),
			autorelay.WithNumRelays(relayWanted),
		))
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(holePunchTracer{st})))
	}
	return opts
}

// watchNAT follows the host's reachability, the addresses AutoNAT v2
// checked and the relay addresses AutoRelay obtained, until ctx ends.
func (h *Host) watchNAT(ctx context.Context, sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			h.onNATEvent(e)
		}
	}
}

func (h *Host) onNATEvent(e any) {
	st := h.nat
	st.mu.Lock()
	switch e := e.(type) {
	case event.EvtLocalReachabilityChanged:
		st.v1 = reachabilityName(e.Reachability)
		h.log.Debug("AutoNAT v1 verdict", "reachability", st.v1)
	case event.EvtHostReachableAddrsChanged:
		st.status.ReachableAddrs = slices.Clone(e.Reachable)
		st.status.UnreachableAddrs = slices.Clone(e.Unreachable)
		h.log.Debug("address reachability", "reachable", e.Reachable, "unreachable", e.Unreachable)
	case event.EvtAutoRelayAddrsUpdated:
		relays := relaysOf(e.RelayAddrs)
		for _, r := range relays {
			if !slices.Contains(st.status.Relays, r) {
				st.reservations.Add(1)
				h.log.Info("relay reservation obtained", "relay", r)
			}
		}
		for _, r := range st.status.Relays {
			if !slices.Contains(relays, r) {
				h.log.Info("relay reservation lost", "relay", r)
			}
		}
		st.status.Relays = relays
		st.status.RelayAddrs = slices.Clone(e.RelayAddrs)
	}
	r := st.reachability()
	changed := r != st.status.Reachability
	st.status.Reachability = r
	st.mu.Unlock()
	if changed {
		h.log.Info("reachability changed", "reachability", r)
	}
	if h.relaySvc != nil {
		h.relaySvc.update(r == ReachabilityPublic)
	}
}

// relaysOf lists, in order of first appearance, the relays named in relay
// addresses (…/p2p/<relay>/p2p-circuit).
func relaysOf(addrs []ma.Multiaddr) []peer.ID {
	var out []peer.ID
	for _, a := range addrs {
		if r, ok := relayOf(a); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// relayOf is the relay of a relay address: the /p2p/ component before
// /p2p-circuit.
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			id, err := peer.IDFromBytes(c.RawValue())
			if err != nil {
				return "", false
			}
			relay = id
		case ma.P_CIRCUIT:
			return relay, relay != ""
		}
	}
	return "", false
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return ReachabilityPublic
	case network.ReachabilityPrivate:
		return ReachabilityPrivate
	default:
		return ReachabilityUnknown
	}
}

// NATStatus reports what the host knows of its reachability.
func (h *Host) NATStatus() NATStatus {
	st := h.nat
	st.mu.Lock()
	s := st.status
	st.mu.Unlock()
	s.ReachableAddrs = slices.Clone(s.ReachableAddrs)
	s.UnreachableAddrs = slices.Clone(s.UnreachableAddrs)
	s.RelayAddrs = slices.Clone(s.RelayAddrs)
	s.Relays = slices.Clone(s.Relays)
	s.RelayService = st.relayActive.Load()
	return s
}

// NATStats returns the NAT traversal counters.
func (h *Host) NATStats() NATStats {
	st := h.nat
	return NATStats{
		HolePunchAttempts:        st.hpAttempts.Load(),
		HolePunchSuccesses:       st.hpSuccesses.Load(),
		HolePunchFailures:        st.hpFailures.Load(),
		DirectDials:              st.directDials.Load(),
		DirectDialSuccesses:      st.directDialsOK.Load(),
		RelayReservations:        st.reservations.Load(),
		RelayServiceReservations: st.served.Load(),
		RelayServiceCircuits:     st.circuits.Load(),
		RelayServiceBytes:        st.relayedBytes.Load(),
	}
}
