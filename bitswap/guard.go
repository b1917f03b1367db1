package bitswap

import (
	"context"
	"sync"
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
//
// "Wanted" includes what was wanted recently: a duplicate of a block that
// arrived from another peer a moment ago, or the answer to a want cancelled
// in flight, is not garbage. The guard remembers every want it has seen in
// two generations of recentGen entries.
type blockGuard struct {
	s     *Store
	bswap atomic.Pointer[bsbitswap.Bitswap]

	mu             sync.Mutex
	recent, former map[string]struct{} // multihashes of recent wants
}

const recentGen = 8192

// wanted adds the current wants to the recent set and reports whether mh
// is among the wants seen.
func (g *blockGuard) wanted(bs *bsbitswap.Bitswap, mh string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.recent == nil {
		g.recent = map[string]struct{}{}
	}
	for _, c := range bs.GetWantlist() {
		g.recent[string(c.Hash())] = struct{}{}
	}
	_, inRecent := g.recent[mh]
	_, inFormer := g.former[mh]
	if len(g.recent) > recentGen {
		g.former, g.recent = g.recent, map[string]struct{}{}
	}
	return inRecent || inFormer
}

var _ tracer.Tracer = (*blockGuard)(nil)

// MessageReceived runs before bitswap handles the message.
func (g *blockGuard) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	blks := msg.Blocks()
	bs := g.bswap.Load()
	if len(blks) == 0 || bs == nil {
		return
	}
	for _, b := range blks {
		if g.wanted(bs, string(b.Cid().Hash())) {
			continue
		}
		if held, _ := g.s.bstore.Has(context.Background(), b.Cid()); held {
			continue
		}
		g.s.log.Warn("peer sent a block nobody asked for (corrupt or unsolicited); disconnecting", "peer", p, "block", b.Cid())
		g.s.spawn(nil, func() { g.s.host.Network().ClosePeer(p) })
		return
	}
}

// MessageSent remembers every block this node asks any peer for, so a
// block answering a want that was fulfilled or cancelled before the answer
// arrived is never mistaken for garbage.
func (g *blockGuard) MessageSent(_ peer.ID, msg bsmsg.BitSwapMessage) {
	wl := msg.Wantlist()
	if len(wl) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.recent == nil {
		g.recent = map[string]struct{}{}
	}
	for _, e := range wl {
		if !e.Cancel {
			g.recent[string(e.Cid.Hash())] = struct{}{}
		}
	}
	if len(g.recent) > recentGen {
		g.former, g.recent = g.recent, map[string]struct{}{}
	}
}
