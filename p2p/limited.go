package p2p

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// AllowLimited returns h with one change: streams it opens for any of
// protos may run over a limited connection — a connection through a relay
// that caps its duration and data (circuit relay v2). libp2p otherwise
// waits for a direct connection (a hole punch) and fails when none comes.
// The first such stream on each limited connection is logged with the
// relay's limits, since the protocol will be cut off when they are spent
// (and reconnect through a new relayed connection). log may be nil.
//
// node/ passes it to the components whose protocols must work between two
// nodes that only reach each other through a relay: the gossip sync
// protocol (bounded batches of small signed ops; GossipSub itself skips
// peers it reaches only through a relay) and raft (validators behind NATs
// that defeat hole punching). Bitswap is not given it: a package transfer
// would exhaust a relay's data limit, so it waits for a direct connection
// and otherwise fetches from other providers. docs/nat.md.
func AllowLimited(h host.Host, log *slog.Logger, protos ...protocol.ID) host.Host {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &limitedHost{Host: h, protos: slices.Clone(protos), log: log, noted: map[string]bool{}}
}

type limitedHost struct {
	host.Host
	protos []protocol.ID
	log    *slog.Logger

	mu    sync.Mutex
	noted map[string]bool // IDs of limited connections already logged
}

// maxNoted bounds the memory of logged connections; past it the set
// starts over (a connection may then be logged twice).
const maxNoted = 1024

// NewStream opens a stream, over a limited connection too when one of pids
// is allowed there.
func (h *limitedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	var allowed protocol.ID
	for _, id := range pids {
		if slices.Contains(h.protos, id) {
			allowed = id
			ctx = network.WithAllowLimitedConn(ctx, string(id))
			break
		}
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err == nil && allowed != "" && s.Conn().Stat().Limited {
		h.note(s.Conn(), allowed)
	}
	return s, err
}

// note logs the first stream of an allowed protocol on a limited
// connection, with the relay's limits.
func (h *limitedHost) note(c network.Conn, proto protocol.ID) {
	h.mu.Lock()
	if h.noted[c.ID()] {
		h.mu.Unlock()
		return
	}
	if len(h.noted) >= maxNoted {
		clear(h.noted)
	}
	h.noted[c.ID()] = true
	h.mu.Unlock()
	relay, _ := relayOf(c.RemoteMultiaddr())
	extra := c.Stat().Extra
	duration, _ := extra[client.StatLimitDuration].(time.Duration)
	data, _ := extra[client.StatLimitData].(uint64)
	h.log.Warn("protocol runs over a relayed connection with limits: the relay will cut it after the duration or data below (docs/nat.md)",
		"protocol", proto, "peer", c.RemotePeer(), "relay", relay, "limit_duration", duration, "limit_bytes", data)
}
