package p2p

import (
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// AllowLimited returns h with one change: streams it opens for any of
// protos may run over a limited connection — a connection through a relay
// that caps its duration and data (circuit relay v2). libp2p otherwise
// waits for a direct connection (a hole punch) and fails when none comes.
//
// node/ passes it to the components whose protocols must work between two
// nodes that only reach each other through a relay: the gossip sync
// protocol (bounded batches of small signed ops; GossipSub itself skips
// peers it reaches only through a relay) and raft (validators behind NATs
// that defeat hole punching). Bitswap is not given it: a package transfer
// would exhaust a relay's data limit, so it waits for a direct connection
// and otherwise fetches from other providers. docs/nat.md.
func AllowLimited(h host.Host, protos ...protocol.ID) host.Host {
	return &limitedHost{Host: h, protos: slices.Clone(protos)}
}

type limitedHost struct {
	host.Host
	protos []protocol.ID
}

// NewStream opens a stream, over a limited connection too when one of pids
// is allowed there.
func (h *limitedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	for _, id := range pids {
		if slices.Contains(h.protos, id) {
			ctx = network.WithAllowLimitedConn(ctx, string(id))
			break
		}
	}
	return h.Host.NewStream(ctx, p, pids...)
}
