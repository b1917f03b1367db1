package node

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// eventHub fans the node's change notifications out to the API's event
// streams (GET /events, which the dashboard follows): gossip view changes,
// raft events and peer connections, which runEventForwarder translates, and
// this node's executor and downloads, which notify directly. Events are
// hints to re-read views; a subscriber that falls behind loses events and
// then gets one resync.
type eventHub struct {
	mu     sync.Mutex
	subs   map[*hubSub]struct{}
	closed bool
}

type hubSub struct {
	ch chan httpapi.Event
	// lost is set when an event did not fit; a resync goes out first as
	// soon as there is room.
	lost bool
}

// hubBuffer is each subscriber's buffer. The API's streams drain theirs
// at once into their coalescing window, so it only fills when a stream
// is stuck writing.
const hubBuffer = 256

func newEventHub() *eventHub { return &eventHub{subs: map[*hubSub]struct{}{}} }

// subscribe returns a channel of events and the func that ends the
// subscription (closing the channel). After close, the channel is closed.
func (h *eventHub) subscribe() (<-chan httpapi.Event, func()) {
	sub := &hubSub{ch: make(chan httpapi.Event, hubBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	h.subs[sub] = struct{}{}
	return sub.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[sub]; ok {
			delete(h.subs, sub)
			close(sub.ch)
		}
	}
}

// emit offers e to every subscriber without waiting.
func (h *eventHub) emit(e httpapi.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if sub.lost {
			select {
			case sub.ch <- httpapi.Event{Kind: httpapi.EventResync}:
				sub.lost = false
			default:
				continue
			}
		}
		select {
		case sub.ch <- e:
		default:
			sub.lost = true
		}
	}
}

// subscribers is the number of open subscriptions.
func (h *eventHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close ends every subscription; later ones start closed.
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		close(sub.ch)
		delete(h.subs, sub)
	}
}

// notify sends one of this node's own events (executor, downloads).
func (n *Node) notify(kind, proposalID string, seq uint64) {
	if n.events != nil {
		n.events.emit(httpapi.Event{Kind: kind, ProposalID: proposalID, Seq: seq})
	}
}

// gossipEventKinds maps gossip's event kinds to the API's.
var gossipEventKinds = map[gossip.EventKind]string{
	gossip.ProposalChanged: httpapi.EventProposalChanged,
	gossip.EntryFinal:      httpapi.EventEntryFinal,
	gossip.ReportAdded:     httpapi.EventReportAdded,
	gossip.RatifyAdded:     httpapi.EventRatifyAdded,
	gossip.AttestAdded:     httpapi.EventAttestAdded,
}

// runEventForwarder translates gossip, raft and peer-connection events
// into the hub until ctx ends. Gossip and raft coalesce or drop for slow
// subscribers themselves, and this loop only copies.
func (n *Node) runEventForwarder(ctx context.Context) {
	gev, gcancel := n.gossip.Subscribe()
	defer gcancel()
	rev, rcancel := n.raft.Events()
	defer rcancel()
	var peers <-chan any
	if sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged)); err != nil {
		n.log.Warn("dashboard events: no peer connection events", "err", err)
	} else {
		defer sub.Close()
		peers = sub.Out()
	}
	for gev != nil || rev != nil || peers != nil {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-gev:
			if !ok {
				gev = nil
				continue
			}
			if kind, known := gossipEventKinds[e.Kind]; known {
				n.events.emit(httpapi.Event{Kind: kind, ProposalID: e.ProposalID, Seq: e.Seq})
			}
		case _, ok := <-rev:
			if !ok {
				rev = nil
				continue
			}
			n.events.emit(httpapi.Event{Kind: httpapi.EventValidators})
		case _, ok := <-peers:
			if !ok {
				peers = nil
				continue
			}
			n.events.emit(httpapi.Event{Kind: httpapi.EventPeers})
		}
	}
	<-ctx.Done()
}
