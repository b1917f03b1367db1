package node

import (
	"context"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// closer is the one lifecycle of a component (docs/architecture.md):
// Close stops it, waits for its goroutines until ctx is done, and returns
// the first call's result on every call. The node registers each
// component's Close as it builds it and runs them in reverse order.
type closer interface {
	Close(ctx context.Context) error
}

var (
	_ closer = (*p2p.Host)(nil)
	_ closer = (*bitswap.Store)(nil)
	_ closer = (*upgrade.Manager)(nil)
	_ closer = (*gossip.Service)(nil)
	_ closer = (*raftnet.Service)(nil)
	_ closer = (*httpapi.Server)(nil)
	_ closer = (*Node)(nil)
)
