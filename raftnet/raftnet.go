// Package raftnet is the validator consensus of synapse-p2p: the validators
// named in the network state run hashicorp/raft over libp2p streams
// (/synapse/<netID>/raft/1) to put approved upgrades into one order. Raft
// orders; it is not trusted to decide (docs/threat-model.md): the leader
// applies a Ratify command for every approved proposal without a slot,
// every validator's FSM turns it into the next Slot, and each validator
// then does its own part through the Governance it was given — it checks
// the entry against its own op set, attests, and signs once a quorum of
// validators attests (Governance.Endorse). The leader voids a slot nobody
// can sign and aligns slots with the entries that became final; followers
// stop following a leader that leaves the log stalled or approved
// proposals unordered. Non-validators never run raft.
package raftnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Candidate is an approved proposal not yet ratified, as the governance
// views see it.
type Candidate struct {
	ProposalID  string
	Version     string
	PackageURL  string
	PackageHash string // bare hex or "sha256:"-prefixed, any case
	PackageSize int64
	VoteIDs     []string // op IDs of the votes counted
	Approval    float64
	Rejection   float64
	Eligible    float64
	// Action, Target and the schedule: what the slot does (Slot).
	Action        string
	Target        uint64
	ActivateAt    int64
	ActivateAfter int64
}

// Governance is what raftnet needs from the operation set (gossip/).
type Governance interface {
	// Approved returns the approved proposals that have not been ratified,
	// in first-seen-then-ID order; the leader applies them in that order.
	Approved(now time.Time) []Candidate
	// NextSeq is the first execution-log seq that is not final on this node.
	NextSeq() uint64
	// Final returns the slot of the entry final at seq, if any.
	Final(seq uint64) (Slot, bool)
	// Endorse does this validator's part for seq given the slot its FSM
	// holds there (nil when none): check, attest, sign a quorum-attested
	// entry. It must not block for long (a package download runs in the
	// background and nudges Changed when done).
	Endorse(ctx context.Context, seq uint64, slot *Slot) (Progress, error)
	// Changed nudges the loop when the op set changed (may be nil).
	Changed() <-chan struct{}
}

// Progress is what Governance.Endorse saw for one seq.
type Progress struct {
	// Final: the entry at seq is final.
	Final bool
	// Waiting: why this validator cannot attest yet (a lagging view, a
	// package still downloading).
	Waiting string
	// Unsignable: why this validator will not attest the slot's entry.
	Unsignable string
	// Attested: this validator attests the slot's entry.
	Attested bool
	// Preparing: this validator is still fetching or dry-running the
	// slot's package; the stall clock does not run meanwhile.
	Preparing bool
	// Ratified is the entry hash this validator signed ("" none).
	Ratified string
	// Quorum is the hash of an entry a finality quorum attests ("" none):
	// the leader never voids a seq that has one.
	Quorum string
}

// Deps are the Service's collaborators.
type Deps struct {
	// Host is this node's libp2p host.
	Host host.Host
	// Governance is the op set's view (see Governance).
	Governance Governance
	// Validators returns the current validator set (global.validators of
	// the network state). It is polled every Config.PollInterval and called
	// for every inbound raft stream, so it should be cheap (a cached copy).
	Validators func() []peer.ID
	// GenesisValidators is the validator set of the genesis: a validator
	// with no raft state bootstraps exactly this configuration, so every
	// genesis validator bootstraps the same one. When empty, the result of
	// Validators() at New is used (only correct before any membership
	// change, so node/ should set it).
	GenesisValidators []peer.ID
	// Routing finds a validator's addresses when the peerstore has none
	// (e.g. the host's DHT); may be nil.
	Routing routing.PeerRouting
	// Logger may be nil.
	Logger *slog.Logger
	// WrapConn, if set, wraps every outbound raft connection (to remote):
	// traffic shaping, metrics, or — in tests — a byzantine validator that
	// rewrites its own raft traffic. Nil leaves connections alone.
	WrapConn func(remote peer.ID, c net.Conn) net.Conn
}

// errClosed is returned by Start after Close.
var errClosed = errors.New("raftnet: closed")

// Service runs (or, on a non-validator, waits to run) raft for one node.
type Service struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	proto protocol.ID
	self  peer.ID
	boot  []peer.ID

	events  *eventHub
	leaders leaderStats
	applied chan struct{} // every FSM signals here after a change
	nudge   chan struct{} // ReconcileMembership and leadership gains
	duty    dutyState     // loop only

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	node    *raftNode // nil while not a validator
	lastFSM *fsm      // the latest FSM, kept after raft stops
	started bool
	closed  bool
	closer  lifecycle.Once

	protected map[peer.ID]bool // validators protected in the conn manager (loop only)
	leftAt    time.Time        // when this node left the validator set (loop only)

	valMu     sync.Mutex
	lastVals  []peer.ID // the validator set the loop saw last
	prevVals  []peer.ID // the set before the last change ...
	prevUntil time.Time // ... still admitted to raft until then

	// banned holds validators this node stopped exchanging raft traffic
	// with, until the given time (a leader suspected of misbehaving).
	banMu  sync.Mutex
	banned map[peer.ID]time.Time
}

// New validates cfg and deps; it starts nothing (see Start).
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Host == nil:
		return nil, fmt.Errorf("%w: no host", ErrInvalidConfig)
	case deps.Governance == nil:
		return nil, fmt.Errorf("%w: no governance", ErrInvalidConfig)
	case deps.Validators == nil:
		return nil, fmt.Errorf("%w: no validators func", ErrInvalidConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	boot := sortedUnique(deps.GenesisValidators)
	if len(boot) == 0 {
		boot = sortedUnique(deps.Validators())
	}
	if len(boot) == 0 {
		return nil, fmt.Errorf("%w: empty validator set", ErrInvalidConfig)
	}
	sctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg:       cfg,
		deps:      deps,
		log:       log.With("component", "raftnet"),
		proto:     ProtocolID(cfg.NetworkID),
		self:      deps.Host.ID(),
		boot:      boot,
		events:    newEventHub(),
		applied:   make(chan struct{}, 1),
		nudge:     make(chan struct{}, 1),
		ctx:       sctx,
		cancel:    cancel,
		lastFSM:   newFSM(nil),
		protected: map[peer.ID]bool{},
		banned:    map[peer.ID]time.Time{},
		duty:      newDutyState(),
	}, nil
}

// Start registers the raft protocol handler, starts raft when this node is
// a validator, and starts the loops that follow the validator set, ratify
// approved proposals (on the leader) and publish ratify ops. It may be
// called once.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if s.started {
		s.mu.Unlock()
		return errors.New("raftnet: already started")
	}
	s.started = true
	s.mu.Unlock()

	s.deps.Host.SetStreamHandler(s.proto, s.handleStream)
	if vals := s.deps.Validators(); s.isValidator(vals) {
		s.protect(vals)
		if err := s.startRaft(); err != nil {
			s.deps.Host.RemoveStreamHandler(s.proto)
			s.protect(nil)
			return err
		}
	}
	s.wg.Add(1)
	go s.loop()
	return nil
}

// Close stops the loops and raft and closes the stores, waiting for them
// until ctx is done. Every call returns the first call's result.
func (s *Service) Close(ctx context.Context) error {
	return s.closer.Do(func() error {
		s.mu.Lock()
		s.closed = true
		started := s.started
		s.mu.Unlock()
		s.cancel()
		var err error
		if werr := lifecycle.Wait(ctx, "raftnet", func() { err = s.stop(started) }); werr != nil {
			return werr
		}
		return err
	})
}

// stop is Close after the cancel: it stops raft and waits for the loops.
func (s *Service) stop(started bool) error {
	// Stop raft before waiting for the loops: a pending Apply or membership
	// change then fails at once instead of running into its timeout.
	err := s.stopRaft()
	s.wg.Wait()
	if started {
		s.deps.Host.RemoveStreamHandler(s.proto)
		s.protect(nil)
	}
	if err2 := s.stopRaft(); err == nil {
		err = err2 // no-op unless a loop restarted raft meanwhile (startRaft refuses after cancel)
	}
	s.events.close()
	return err
}

// IsLeader reports whether this node is the raft leader.
func (s *Service) IsLeader() bool {
	n := s.current()
	return n != nil && n.isLeader()
}

// Leader returns the current leader as this node knows it ("" if none or
// when this node does not run raft).
func (s *Service) Leader() peer.ID {
	n := s.current()
	if n == nil {
		return ""
	}
	return n.leader()
}

// Validators returns the current validator set (sorted), as Deps.Validators
// reports it.
func (s *Service) Validators() []peer.ID { return sortedUnique(s.deps.Validators()) }

// Slots returns the FSM's slots in seq order. A non-validator has none; a
// removed validator keeps those it had.
func (s *Service) Slots() []Slot { return s.fsm().all() }

// Events subscribes to the Service's events; call the returned func to
// unsubscribe. The channel is closed on Close or unsubscribe. A subscriber
// that falls more than a buffer behind misses events.
func (s *Service) Events() (<-chan Event, func()) { return s.events.subscribe() }

// ReconcileMembership makes the service re-read the validator set now:
// start or stop raft locally and, on the leader, add and remove voters.
func (s *Service) ReconcileMembership() { s.poke() }

func (s *Service) poke() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

func (s *Service) current() *raftNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

func (s *Service) fsm() *fsm {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastFSM
}

func (s *Service) isValidator(vals []peer.ID) bool { return slices.Contains(vals, s.self) }

func (s *Service) isBlocked(p peer.ID) bool {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	until, ok := s.banned[p]
	if ok && time.Now().After(until) {
		delete(s.banned, p)
		return false
	}
	return ok
}

// allowPeer is the gate for raft streams in both directions: current
// validators, and — while the set changes — the validators before the
// change and the servers of this node's raft configuration (a validator
// that just left keeps its vote until the leader removed it).
func (s *Service) allowPeer(p peer.ID) bool {
	if s.isBlocked(p) {
		return false
	}
	if slices.Contains(s.deps.Validators(), p) || s.wasValidator(p) {
		return true
	}
	n := s.current()
	return n != nil && n.inConfiguration(p)
}

// handleStream gets every inbound raft stream: streams from non-validators
// are reset before raft reads a byte.
func (s *Service) handleStream(st network.Stream) {
	p := st.Conn().RemotePeer()
	if !s.allowPeer(p) {
		s.log.Debug("refused raft stream", "peer", p, "err", errNotValidator)
		st.Reset()
		return
	}
	n := s.current()
	if n == nil {
		st.Reset()
		return
	}
	n.layer.deliver(st)
}

func sortedUnique(ids []peer.ID) []peer.ID {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// retryDelay doubles d within [RetryMin, RetryMax].
func (s *Service) retryDelay(d time.Duration) time.Duration {
	d *= 2
	if d < s.cfg.RetryMin {
		d = s.cfg.RetryMin
	}
	if d > s.cfg.RetryMax {
		d = s.cfg.RetryMax
	}
	return d
}
