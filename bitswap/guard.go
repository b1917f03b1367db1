package bitswap

import (
	"context"
	"sync/atomic"

	bsbitswap "github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/tracer"
	"github.com/libp2p/go-libp2p/core/peer"
)

// blockGuard hangs up on peers that send blocks nobody asked for.
//
// bitswap recomputes the CID of every received block from its bytes, so a
// block with corrupted bytes gets a CID that matches no want: it is never
// stored or handed out. But boxo keeps the want with the peer that sent the
// garbage, which then stalls the fetch. An honest peer only sends blocks it
// was asked for (a late duplicate is still wanted or already stored), so a
// block that is neither wanted nor held marks the sender as broken or
// malicious; closing its connections makes the session ask other peers.
type blockGuard struct {
	s     *Store
	bswap atomic.Pointer[bsbitswap.Bitswap]
}

var _ tracer.Tracer = (*blockGuard)(nil)

// MessageReceived runs before bitswap handles the message.
func (g *blockGuard) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	blks := msg.Blocks()
	bs := g.bswap.Load()
	if len(blks) == 0 || bs == nil {
		return
	}
	wanted := map[string]struct{}{}
	for _, c := range bs.GetWantlist() {
		wanted[string(c.Hash())] = struct{}{}
	}
	for _, b := range blks {
		if _, ok := wanted[string(b.Cid().Hash())]; ok {
			continue
		}
		if held, _ := g.s.bstore.Has(context.Background(), b.Cid()); held {
			continue
		}
		g.s.log.Warn("peer sent a block nobody asked for (corrupt or unsolicited); disconnecting", "peer", p, "block", b.Cid())
		g.s.spawn(&g.s.wg, func() { g.s.host.Network().ClosePeer(p) })
		return
	}
}

// MessageSent is not needed.
func (g *blockGuard) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}
