package raftnet

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	// EventRaftStarted: this node became a validator and runs raft.
	EventRaftStarted EventKind = "raft_started"
	// EventRaftStopped: this node left the validator set (or closed).
	EventRaftStopped EventKind = "raft_stopped"
	// EventLeader: the known leader changed (Leader is "" when none).
	EventLeader EventKind = "leader"
	// EventRatified: this validator signed entry Seq (EntryHash).
	EventRatified EventKind = "ratified"
	// EventVoided: this leader voided the slot at Seq.
	EventVoided EventKind = "voided"
	// EventBanned: this node stopped following leader Peer (Reason).
	EventBanned EventKind = "banned"
	// EventMembership: the leader added (Peer) or removed a raft voter.
	EventMembership EventKind = "membership"
)

// Event is one notification from the Service.
type Event struct {
	Kind      EventKind
	Leader    peer.ID // EventLeader
	Peer      peer.ID // EventMembership
	Added     bool    // EventMembership: added (true) or removed
	Seq       uint64  // EventRatified, EventVoided
	EntryHash string  // EventRatified
	Reason    string  // EventBanned
}

// eventBuffer is each subscriber's buffer; a subscriber that falls further
// behind misses events (it can always re-read Entries, Leader, IsLeader).
const eventBuffer = 128

type eventHub struct {
	mu     sync.Mutex
	next   int
	subs   map[int]chan Event
	closed bool
}

func newEventHub() *eventHub { return &eventHub{subs: map[int]chan Event{}} }

func (h *eventHub) subscribe() (<-chan Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Event, eventBuffer)
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	id := h.next
	h.next++
	h.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if c, ok := h.subs[id]; ok {
				delete(h.subs, id)
				close(c)
			}
		})
	}
}

func (h *eventHub) emit(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, ch := range h.subs {
		delete(h.subs, id)
		close(ch)
	}
}
