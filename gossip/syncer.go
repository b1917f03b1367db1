package gossip

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// syncer is the sync protocol's state on one node (docs/protocols.md):
// the queue of peers to sync with, the sessions running each way, the
// peers whose automatic syncs are suspended, and the server's cache of
// sorted bucket IDs. A Service owns one. Its times are local, never
// replicated.
type syncer struct {
	queue     chan peer.ID // peers to sync with, drained by syncLoop
	idsCap    int          // IDs per ids reply: maxIDsPerReply (tests lower it)
	sortedIDs bucketCache  // sorted bucket IDs for the server
	bytesIn   atomic.Int64 // bytes outbound sessions sent and received (benchmarks read it)

	mu        sync.Mutex // guards the fields below
	outbound  map[peer.ID]bool
	inbound   map[peer.ID]*inSession
	inSeq     uint64                // admissions so far: orders inbound sessions by age
	suspended map[peer.ID]time.Time // no automatic sync with these peers until then
}

func newSyncer() *syncer {
	return &syncer{
		queue:     make(chan peer.ID, 64),
		idsCap:    maxIDsPerReply,
		outbound:  map[peer.ID]bool{},
		inbound:   map[peer.ID]*inSession{},
		suspended: map[peer.ID]time.Time{},
	}
}

// inSession is one inbound sync session.
type inSession struct {
	str    network.Stream
	member bool
	seq    uint64 // admission order
}

// admit applies the inbound session policy to a new session from p (a
// member or not): one session per peer, maxSessions in all, at most
// maxNonMember for non-members; a member that finds every slot taken
// evicts the oldest non-member session. It returns the new session (nil:
// no slot) and the evicted one, if any, whose stream the caller resets.
func (y *syncer) admit(p peer.ID, str network.Stream, member bool, maxSessions, maxNonMember int) (in, evicted *inSession) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.inbound[p] != nil {
		return nil, nil
	}
	nonMembers := 0
	var oldest peer.ID
	for q, x := range y.inbound {
		if !x.member {
			nonMembers++
			if oldest == "" || x.seq < y.inbound[oldest].seq {
				oldest = q
			}
		}
	}
	switch {
	case len(y.inbound) < maxSessions && (member || nonMembers < maxNonMember):
	case member && len(y.inbound) >= maxSessions && oldest != "":
		evicted = y.inbound[oldest]
		delete(y.inbound, oldest)
	default:
		return nil, nil
	}
	y.inSeq++
	in = &inSession{str: str, member: member, seq: y.inSeq}
	y.inbound[p] = in
	return in, evicted
}

// endInbound frees p's slot if in still holds it (it may have been
// evicted and the slot given to a newer session of p).
func (y *syncer) endInbound(p peer.ID, in *inSession) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.inbound[p] == in {
		delete(y.inbound, p)
	}
}

// startOutbound reports whether an automatic session with p may start at
// now — none runs with p and p is not suspended — and marks it running.
func (y *syncer) startOutbound(p peer.ID, now time.Time) bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.outbound[p] || now.Before(y.suspended[p]) {
		return false
	}
	y.outbound[p] = true
	return true
}

// endOutbound marks the automatic session with p as ended.
func (y *syncer) endOutbound(p peer.ID) {
	y.mu.Lock()
	defer y.mu.Unlock()
	delete(y.outbound, p)
}

// suspend keeps automatic syncs away from p until now+syncSuspension. The
// list holds at most maxSuspended peers: expired ones go first, then all.
func (y *syncer) suspend(p peer.ID, now time.Time) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if len(y.suspended) >= maxSuspended {
		for q, until := range y.suspended {
			if now.After(until) {
				delete(y.suspended, q)
			}
		}
		if len(y.suspended) >= maxSuspended {
			y.suspended = map[peer.ID]time.Time{}
		}
	}
	y.suspended[p] = now.Add(syncSuspension)
}
