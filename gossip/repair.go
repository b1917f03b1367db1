package gossip

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// reportRepairDelay is how long after a report of an entry that is not
// final here a node syncs with the peer that forwarded it. Reports follow
// finality by the prefetch and execution time, so an entry still not final
// here a second after its first report is one whose ratify ops this node
// missed.
const reportRepairDelay = time.Second

// reportRepair turns reports into a repair signal. A node misses a
// validator's ratify op when GossipSub drops it on the way (a peer's send
// queue full during a burst: a 1000-node network voting) and lazy gossip
// misses it too; the periodic op-set sync would bring it minutes later. A
// report of entry seq says its author executed seq, and the peer that
// forwarded it accepted it: if seq is still not final here a second later,
// sync with that peer.
//
// Any eligible voter may report any seq, so a report is only a hint and
// its cost is bounded: only the next seq this node lacks counts (a node
// further behind catches up by the periodic sync), one repair at a time,
// and one per seq every reportRepairEvery.
type reportRepair struct {
	mu      sync.Mutex
	pending bool
	seq     uint64    // the seq of the last repair
	at      time.Time // when it started
}

// reportRepairEvery is how often the same seq may trigger a repair.
const reportRepairEvery = 30 * time.Second

// noteReport handles a valid report of entry seq that from delivered.
func (s *Service) noteReport(seq uint64, from peer.ID) {
	if seq != s.NextSeq() || from == "" || from == s.self {
		return
	}
	now := s.now()
	r := &s.repair
	r.mu.Lock()
	busy := r.pending || (seq == r.seq && now.Sub(r.at) < reportRepairEvery)
	if !busy {
		r.pending, r.seq, r.at = true, seq, now
	}
	r.mu.Unlock()
	if busy {
		return
	}
	time.AfterFunc(reportRepairDelay, func() {
		r.mu.Lock()
		r.pending = false
		r.mu.Unlock()
		if _, ok := s.Final(seq); ok || s.ctx.Err() != nil {
			return
		}
		s.log.Debug("entry reported but not final here: syncing", "seq", seq, "peer", from)
		s.requestSync(from)
	})
}
