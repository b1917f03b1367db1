package gossip

import "sync"

// EventKind says what changed.
type EventKind int

// Event kinds.
const (
	// ProposalChanged: a proposal arrived or its votes changed.
	ProposalChanged EventKind = iota + 1
	// EntryFinal: execution-log entry Seq became final.
	EntryFinal
	// ReportAdded: a report for entry Seq arrived.
	ReportAdded
	// RatifyAdded: a validator's signature on entry Seq arrived.
	RatifyAdded
	// AttestAdded: a validator attested (or changed its attest on) entry Seq.
	AttestAdded
)

func (k EventKind) String() string {
	switch k {
	case ProposalChanged:
		return "proposal_changed"
	case EntryFinal:
		return "entry_final"
	case ReportAdded:
		return "report_added"
	case RatifyAdded:
		return "ratify_added"
	case AttestAdded:
		return "attest_added"
	}
	return "unknown"
}

// Event announces a change of the views. Events are hints: read the views
// for the current state.
type Event struct {
	Kind       EventKind
	ProposalID string
	Seq        uint64
}

// subscriber holds events the consumer has not taken yet, coalesced by
// (kind, proposal, seq), so a slow subscriber loses only repetitions and
// never blocks gossip.
type subscriber struct {
	kinds   uint32 // bit k set: wants EventKind k
	out     chan Event
	mu      sync.Mutex
	pending []Event
	keys    map[Event]bool
	wake    chan struct{}
	done    chan struct{}
}

// maxPending bounds one subscriber's coalesced backlog; beyond it new
// events are dropped.
const maxPending = 4096

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	if !s.keys[e] && len(s.pending) < maxPending {
		s.keys[e] = true
		s.pending = append(s.pending, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run moves pending events to out until done.
func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		var e Event
		have := len(s.pending) > 0
		if have {
			e = s.pending[0]
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- e:
			s.mu.Lock()
			s.pending = s.pending[1:]
			delete(s.keys, e)
			s.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

// Subscribe returns a channel of view changes of the given kinds (every
// kind when none is given) and a func that ends the subscription. Slow
// subscribers get coalesced events; gossip never waits. Naming the kinds
// matters at scale: each vote is a ProposalChanged event, and a consumer
// that only needs finality would otherwise wake for every vote of the
// network.
func (s *Service) Subscribe(kinds ...EventKind) (<-chan Event, func()) {
	mask := ^uint32(0)
	if len(kinds) > 0 {
		mask = 0
		for _, k := range kinds {
			mask |= 1 << k
		}
	}
	sub := &subscriber{
		kinds: mask,
		out:   make(chan Event, s.cfg.EventBuffer),
		keys:  map[Event]bool{},
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	s.subMu.Lock()
	if s.closed {
		s.subMu.Unlock()
		close(sub.out)
		return sub.out, func() {}
	}
	s.subs[sub] = true
	s.wg.Add(1)
	s.subMu.Unlock()
	go func() {
		defer s.wg.Done()
		sub.run()
	}()
	var once sync.Once
	return sub.out, func() {
		once.Do(func() {
			s.subMu.Lock()
			defer s.subMu.Unlock()
			if s.subs[sub] { // Close may have ended it already
				delete(s.subs, sub)
				close(sub.done)
			}
		})
	}
}

func (s *Service) emit(events ...Event) {
	if len(events) == 0 {
		return
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		for _, e := range events {
			if sub.kinds&(1<<e.Kind) != 0 {
				sub.push(e)
			}
		}
	}
}
