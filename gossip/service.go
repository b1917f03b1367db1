// Package gossip replicates a node's governance data — proposals, votes,
// validator ratifications and execution reports — as a set of signed,
// content-addressed operations, bounded per author. Ops spread over a
// GossipSub topic and are repaired by a pull-based sync protocol; every
// node derives the same views (proposals, tallies, the final execution
// log, reports) from the same set. Validators also exchange transient
// attest ops and sign entries through Endorse. See docs/protocols.md,
// docs/governance.md and docs/threat-model.md.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Deps are what the service needs from the node.
type Deps struct {
	Host      host.Host
	Key       crypto.PrivKey     // node key; signs ops (must be the host's key)
	Datastore datastore.Batching // shared; the service owns /gossip
	NetID     string
	Rules     func() genesis.Rules // current governance rules
	// RulesFor returns the rules in force for execution-log entry seq (the
	// rules of the state after entry seq−1) and false when this node does
	// not know them yet. Finality of seq and the authority of ratify and
	// attest ops are decided with them. Nil means Rules for every seq
	// (a network whose rules never change). Call Refresh when it changes.
	RulesFor func(seq uint64) (genesis.Rules, bool)
	// Repair drops stored records that cannot be loaded instead of
	// refusing to start (ErrCorruptStore).
	Repair bool
	Logger *slog.Logger // may be nil
	// Now is the service's clock: advisory op timestamps, first-seen and
	// final times, orphan expiry, sync suspensions and per-author rate
	// limits (stream deadlines use the wall clock). Nil means time.Now.
	Now func() time.Time
	// Signatures, if set, is shared by the nodes of one process (a
	// simulated network) so that each op's signature is verified once
	// there; nil for a real node.
	Signatures *SignatureCache
}

// Errors of the publishing API.
var (
	ErrClosed            = errors.New("gossip: service closed")
	ErrUnknownProposal   = errors.New("gossip: unknown proposal")
	ErrAmbiguousProposal = errors.New("gossip: proposal name is ambiguous; use the full proposal ID")
	ErrNotEligible       = errors.New("gossip: this node may not vote or propose")
	ErrAlreadyVoted      = errors.New("gossip: already voted with this choice")
	ErrNotValidator      = errors.New("gossip: this node is not a validator")
	ErrBadChoice         = errors.New("gossip: invalid vote choice")
	ErrStaleVersion      = errors.New("gossip: proposed version is not newer than the network's")
	// ErrDoubleSign: this validator already signed a different entry at
	// that seq (its signing record says so); it never signs a second.
	ErrDoubleSign = errors.New("gossip: refusing to sign a second entry at one seq")
	// ErrPackageTooLarge: the proposal's package_size exceeds the network's
	// limits.max_package_bytes.
	ErrPackageTooLarge = errors.New("gossip: package_size exceeds the network's limit")
)

// topicName is the governance GossipSub topic of a network.
func topicName(netID string) string { return "/synapse/" + netID + "/gov/1" }

// SyncProtocol is the sync protocol ID of a network.
func SyncProtocol(netID string) protocol.ID { return protocol.ID("/synapse/" + netID + "/sync/1") }

// rulesDep is the orphan pool's key for ops that wait for rules, not ops.
var rulesDep = OpID{}

// Service is a node's view of the governance op set.
type Service struct {
	cfg   Config
	deps  Deps
	self  peer.ID
	log   *slog.Logger
	netID string

	ps     *pubsub.PubSub
	drops  dropTracer
	repair reportRepair
	topic  *pubsub.Topic
	sub    *pubsub.Subscription

	mu       sync.RWMutex
	st       *store
	finalLog []execlog.Entry // cached final execution log
	dropped  map[OpID]bool   // IDs superseded on arrival or evicted (by content, safe to skip)
	evidence map[string]bool // conflicts already logged
	attests  map[uint64]map[peer.ID]*Op
	finalAt  map[uint64]time.Time // when each entry became final here (local)
	endorse  endorseState

	writeMu sync.Mutex // one addOps at a time: memory and disk change in the same order
	orphans *orphanPool
	rejects *rejectCache // authentic invalid ops sync need not validate again
	pubMu   sync.Mutex   // one publish at a time: per-author seq stays unique

	syncer   *syncer               // the sync protocol's sessions, queue and suspensions
	notifiee *network.NotifyBundle // syncs with each newly connected peer

	scoreMu sync.Mutex // topic peer scores and per-author rate limits (pubsub.go)
	scores  map[peer.ID]float64
	overrun map[peer.ID]float64 // decaying count of bound-exceeding ops a peer delivered first
	rate    map[peer.ID]*tokenBucket

	subMu  sync.Mutex // event subscribers (events.go)
	subs   map[*subscriber]bool
	closed bool // no new subscribers after Close

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closer lifecycle.Once
}

// New validates cfg and deps, loads the op set from the datastore, joins
// the topic and registers the sync handler. A datastore with records that
// cannot be loaded is ErrCorruptStore (naming them) unless Deps.Repair.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Host == nil:
		return nil, fmt.Errorf("%w: no host", ErrInvalidConfig)
	case deps.Key == nil:
		return nil, fmt.Errorf("%w: no key", ErrInvalidConfig)
	case deps.Datastore == nil:
		return nil, fmt.Errorf("%w: no datastore", ErrInvalidConfig)
	case deps.NetID == "":
		return nil, fmt.Errorf("%w: empty network ID", ErrInvalidConfig)
	case deps.Rules == nil:
		return nil, fmt.Errorf("%w: no rules func", ErrInvalidConfig)
	}
	self, err := peer.IDFromPrivateKey(deps.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %v", ErrInvalidConfig, err)
	}
	if self != deps.Host.ID() {
		return nil, fmt.Errorf("%w: key is not the host's key", ErrInvalidConfig)
	}
	if deps.Key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: key must be Ed25519", ErrInvalidConfig)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{
		cfg: cfg, deps: deps, self: self, netID: deps.NetID,
		log:      deps.Logger.With("component", "gossip"),
		st:       newStore(namespace.Wrap(deps.Datastore, datastore.NewKey("/gossip"))),
		rejects:  newRejectCache(cfg.RejectCacheSize),
		dropped:  map[OpID]bool{},
		evidence: map[string]bool{},
		attests:  map[uint64]map[peer.ID]*Op{},
		finalAt:  map[uint64]time.Time{},
		endorse:  newEndorseState(),
		orphans:  newOrphanPool(cfg.OrphanMax, cfg.OrphanTTL),
		syncer:   newSyncer(),
		scores:   map[peer.ID]float64{},
		overrun:  map[peer.ID]float64{},
		subs:     map[*subscriber]bool{},
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.joinTopic(); err != nil {
		s.cancel()
		return nil, err
	}
	deps.Host.SetStreamHandler(SyncProtocol(s.netID), s.handleSync)
	s.notifiee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		s.requestSync(c.RemotePeer())
	}}
	deps.Host.Network().Notify(s.notifiee)
	s.wg.Add(3)
	go s.readLoop()
	go s.syncLoop()
	go s.maintenance()
	for _, p := range deps.Host.Network().Peers() {
		s.requestSync(p)
	}
	return s, nil
}

// load reads the stored set, applies the per-author bounds (dropping what
// an older version kept beyond them) and derives the final log.
func (s *Service) load(ctx context.Context) error {
	l, err := s.st.read(ctx, s.netID)
	if err != nil {
		return fmt.Errorf("gossip: load store: %w", err)
	}
	var drop []*Op
	protected := s.protectedLocked()
	for _, op := range l.ops {
		evict, err := s.st.plan(op, protected)
		switch {
		case err == nil:
		case errors.Is(err, ErrSuperseded):
			drop = append(drop, op)
			continue
		case errors.Is(err, ErrMissingDeps):
			l.bad = append(l.bad, badRecord{opKey(op.ID).String(), "its proposal op " + op.Deps[0].String() + " is not stored"})
			continue
		default:
			l.bad = append(l.bad, badRecord{opKey(op.ID).String(), err.Error()})
			continue
		}
		if (op.Kind == KindVote || op.Kind == KindRatify && !op.Ratify.Entry.Void) && s.st.propByOp[op.Deps[0]] == nil {
			l.bad = append(l.bad, badRecord{opKey(op.ID).String(), "its dep " + op.Deps[0].String() + " is not a stored proposal"})
			continue
		}
		for _, e := range evict {
			s.st.remove(e)
			drop = append(drop, e)
		}
		s.st.index(op, l.seen[op.ID])
	}
	if len(l.bad) > 0 {
		if !s.deps.Repair {
			return corruptError(l.bad)
		}
		if err := s.st.deleteRecords(ctx, l.bad); err != nil {
			return fmt.Errorf("gossip: repair: %w", err)
		}
		s.log.Warn("repair dropped records that could not be loaded", "count", len(l.bad), "first", l.bad[0].key, "reason", l.bad[0].reason)
	}
	if err := s.st.writeOps(ctx, nil, time.Time{}, drop); err != nil {
		return fmt.Errorf("gossip: drop ops beyond the bounds: %w", err)
	}
	for seq, at := range l.finalAt {
		s.finalAt[seq] = at
	}
	s.mu.Lock()
	s.updateFinalLocked()
	s.mu.Unlock()
	s.log.Info("loaded op set", "ops", len(s.st.ops), "dropped", len(drop), "final", len(s.finalLog))
	return nil
}

// Close leaves the topic, stops the sync protocol and every goroutine,
// waiting for them until ctx is done. Every call returns the first call's
// result. The datastore stays open (node owns it).
func (s *Service) Close(ctx context.Context) error {
	return s.closer.Do(func() error {
		s.deps.Host.Network().StopNotify(s.notifiee)
		s.deps.Host.RemoveStreamHandler(SyncProtocol(s.netID))
		s.subMu.Lock()
		s.closed = true
		for sub := range s.subs {
			close(sub.done)
		}
		s.subs = map[*subscriber]bool{}
		s.subMu.Unlock()
		s.sub.Cancel()
		s.topic.Close()
		s.cancel()
		return lifecycle.Wait(ctx, "gossip", s.wg.Wait)
	})
}

func (s *Service) now() time.Time { return s.deps.Now() }

// rulesFor is Deps.RulesFor, defaulting to the current rules.
func (s *Service) rulesFor(seq uint64) (genesis.Rules, bool) {
	if s.deps.RulesFor == nil {
		return s.deps.Rules(), true
	}
	return s.deps.RulesFor(seq)
}

// lookupLocked reads the op set; callers hold s.mu.
func (s *Service) lookupLocked(id OpID) (*Op, bool) { return s.st.get(id) }

// checker is the opChecker over the current rules and op set.
func (s *Service) checker() opChecker {
	return opChecker{NetID: s.netID, Rules: s.deps.Rules(), RulesFor: s.rulesFor, Lookup: s.lookupLocked, Sigs: s.deps.Signatures}
}

// validate runs opChecker.validate against the current set under a read lock, and
// then the per-author bounds.
func (s *Service) validate(raw []byte) (*Op, error) {
	c := s.checker()
	s.mu.RLock()
	defer s.mu.RUnlock()
	op, err := c.validate(raw)
	if err != nil || op.Kind == KindAttest {
		return op, err
	}
	if s.dropped[op.ID] {
		return op, fmt.Errorf("%w: dropped before", ErrSuperseded)
	}
	if _, err := s.st.plan(op, s.protectedLocked()); err != nil {
		return op, err
	}
	return op, nil
}

// protectedLocked reports whether a proposal may not be evicted by its
// author's newer proposals: some validator's ratify op names it.
func (s *Service) protectedLocked() func(*proposalState) bool {
	return func(ps *proposalState) bool { return s.st.named[ps.id] > 0 }
}

// addOps indexes and persists validated ops under the per-author bounds
// (dropping what they replace), announces the changes and releases orphans
// that waited for them. It returns how many were added; an op that the
// bounds refuse is remembered so sync does not fetch it again.
func (s *Service) addOps(ops []*Op) (int, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	s.writeMu.Lock()
	seen := s.now() // local first-seen time, never replicated
	var events []Event
	var added, dropped []*Op
	s.mu.Lock()
	protected := s.protectedLocked()
	for _, op := range ops {
		evict, err := s.st.plan(op, protected)
		if err != nil {
			if errors.Is(err, ErrSuperseded) {
				s.noteDroppedLocked(op.ID)
			}
			continue
		}
		for _, e := range evict {
			s.st.remove(e)
			s.noteDroppedLocked(e.ID)
			dropped = append(dropped, e)
		}
		s.st.index(op, seen)
		added = append(added, op)
		switch op.Kind {
		case KindProposal:
			events = append(events, Event{Kind: ProposalChanged, ProposalID: proposalIDFor(op)})
		case KindVote:
			events = append(events, Event{Kind: ProposalChanged, ProposalID: op.Vote.ProposalID})
		case KindRatify:
			events = append(events, Event{Kind: RatifyAdded, Seq: op.Ratify.Entry.Seq, ProposalID: op.Ratify.Entry.ProposalID})
		case KindReport:
			events = append(events, Event{Kind: ReportAdded, Seq: op.Report.Seq, ProposalID: op.Report.ProposalID})
		}
	}
	events = append(events, s.updateFinalLocked()...)
	s.mu.Unlock()
	// An op added and evicted in the same batch is neither written nor kept.
	gone := map[OpID]bool{}
	for _, op := range dropped {
		gone[op.ID] = true
	}
	kept := added[:0:0]
	for _, op := range added {
		if !gone[op.ID] {
			kept = append(kept, op)
		}
	}
	err := s.st.writeOps(s.ctx, kept, seen, dropped)
	s.writeMu.Unlock()
	if err != nil {
		err = fmt.Errorf("gossip: persist ops: %w", err)
		s.log.Error("persist ops", "err", err)
	}
	s.emit(events...)
	for _, op := range added {
		for _, o := range s.orphans.waitingFor(op.ID) {
			s.ingest(o.raw, o.from)
		}
	}
	return len(kept), err
}

func (s *Service) noteDroppedLocked(id OpID) {
	if len(s.dropped) >= 1<<14 {
		s.dropped = map[OpID]bool{}
	}
	s.dropped[id] = true
}

// updateFinalLocked recomputes the final log, persists marks of entries
// that became final and returns their events.
func (s *Service) updateFinalLocked() []Event {
	// Seqs below the lowest one a ratify op arrived for keep their
	// verdict: start after them.
	keep := len(s.finalLog)
	if d := s.st.dirty; d > 0 && int(d-1) < keep {
		keep = int(d - 1)
	}
	s.st.dirty = 0
	return s.deriveFinalLocked(s.finalLog[:keep])
}

// deriveFinalLocked derives the final log after prefix, persists marks of
// entries that became final and returns their events.
func (s *Service) deriveFinalLocked(prefix []execlog.Entry) []Event {
	log, newly, conflicts := s.st.finalLog(s.rulesFor, prefix)
	for _, c := range conflicts {
		if !s.evidence[c] && len(s.evidence) < 1024 {
			s.evidence[c] = true
			s.log.Error("execution log evidence", "detail", c)
		}
	}
	var events []Event
	for _, e := range newly {
		h := e.Hash()
		if err := s.st.persistFinal(s.ctx, e.Seq, h); err != nil {
			s.log.Error("persist final mark", "seq", e.Seq, "err", err)
			log = log[:e.Seq-1]
			break
		}
		s.st.final[e.Seq] = h
		if _, ok := s.finalAt[e.Seq]; !ok {
			at := s.now()
			s.finalAt[e.Seq] = at
			if err := s.st.persistFinalAt(s.ctx, e.Seq, at); err != nil {
				s.log.Error("persist final time", "seq", e.Seq, "err", err)
			}
		}
		events = append(events, Event{Kind: EntryFinal, Seq: e.Seq, ProposalID: e.ProposalID})
		if e.ProposalID != "" {
			events = append(events, Event{Kind: ProposalChanged, ProposalID: e.ProposalID})
		}
	}
	s.finalLog = log
	for seq := range s.attests {
		if seq <= uint64(len(log)) {
			delete(s.attests, seq)
		}
	}
	return events
}

// Refresh re-reads the rules: the node calls it after each executed entry
// (Deps.Rules and Deps.RulesFor moved on). Finality is evaluated again and
// ops that waited for these rules are validated again.
func (s *Service) Refresh() {
	s.mu.Lock()
	events := s.deriveFinalLocked(nil) // the rules moved: evaluate every seq again
	s.mu.Unlock()
	s.emit(events...)
	for _, o := range s.orphans.waitingFor(rulesDep) {
		s.ingest(o.raw, o.from)
	}
}

// ingest validates and adds one op from the network (from may be ""),
// holding it as an orphan when deps or rules are missing. It returns the
// validation error, if any.
func (s *Service) ingest(raw []byte, from peer.ID) error {
	op, err := s.validate(raw)
	switch {
	case err == nil:
		if op.Kind == KindAttest {
			s.noteAttest(op)
			return nil
		}
		_, err = s.addOps([]*Op{op})
		return err
	case errors.Is(err, ErrMissingDeps):
		var me *missingDepsError
		errors.As(err, &me)
		if s.orphans.add(op.ID, &orphan{raw: raw, from: from, added: s.now(), missing: me.Missing}) && from != "" {
			s.requestSync(from)
		}
		return err
	case errors.Is(err, ErrPendingRules):
		s.orphans.add(op.ID, &orphan{raw: raw, from: from, added: s.now(), missing: []OpID{rulesDep}})
		return err
	case errors.Is(err, ErrSuperseded):
		s.mu.Lock()
		s.noteDroppedLocked(op.ID)
		s.mu.Unlock()
		return err
	default:
		return err
	}
}

// maintenance expires orphans and syncs with a random peer periodically.
func (s *Service) maintenance() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if n := s.orphans.expire(s.now()); n > 0 {
				s.log.Debug("orphans expired", "count", n)
			}
			s.decayOverrun()
			peers := s.topic.ListPeers()
			if len(peers) == 0 {
				peers = s.deps.Host.Network().Peers()
			}
			if len(peers) > 0 {
				s.requestSync(peers[randIntn(len(peers))])
			}
		}
	}
}
