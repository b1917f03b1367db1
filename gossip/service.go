// Package gossip replicates a node's governance data — proposals, votes,
// validator ratifications and execution reports — as a grow-only set of
// signed, content-addressed operations. Ops spread over a GossipSub topic
// and are repaired by a pull-based sync protocol; every node derives the
// same views (proposals, tallies, the final execution log, reports) from
// the same set. See docs/protocols.md and docs/governance.md.
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

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Deps are what the service needs from the node.
type Deps struct {
	Host      host.Host
	Key       crypto.PrivKey     // node key; signs ops (must be the host's key)
	Datastore datastore.Batching // shared; the service owns /gossip
	NetID     string
	Rules     func() genesis.Rules // current governance rules
	Logger    *slog.Logger         // may be nil
	Now       func() time.Time     // advisory timestamps; nil means time.Now
}

// Errors of the publishing API.
var (
	ErrClosed          = errors.New("gossip: service closed")
	ErrUnknownProposal = errors.New("gossip: unknown proposal")
	ErrNotEligible     = errors.New("gossip: this node may not vote or propose")
	ErrAlreadyVoted    = errors.New("gossip: already voted with this choice")
	ErrNotValidator    = errors.New("gossip: this node is not a validator")
	ErrBadChoice       = errors.New("gossip: invalid vote choice")
	ErrTallyMismatch   = errors.New("gossip: tally does not approve")
	ErrStaleVersion    = errors.New("gossip: proposed version is not newer than the network's")
)

// TopicName is the governance GossipSub topic of a network.
func TopicName(netID string) string { return "/synapse/" + netID + "/gov/1" }

// SyncProtocol is the sync protocol ID of a network.
func SyncProtocol(netID string) protocol.ID { return protocol.ID("/synapse/" + netID + "/sync/1") }

// Service is a node's view of the governance op set.
type Service struct {
	cfg   Config
	deps  Deps
	self  peer.ID
	log   *slog.Logger
	netID string

	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription

	mu       sync.RWMutex
	st       *store
	evidence map[string]bool // conflicts already logged

	orphans *orphanPool
	rejects *rejectCache // authentic invalid ops sync need not validate again
	pubMu   sync.Mutex   // one publish at a time: per-author seq stays unique

	syncQ      chan peer.ID
	idsCap     int         // IDs per ids reply: maxIDsPerReply (tests lower it)
	sortedIDs  bucketCache // sorted bucket IDs for the sync server
	syncMu     sync.Mutex
	outbound   map[peer.ID]bool
	inbound    map[peer.ID]*inSession
	inSeq      uint64                // admissions so far: orders inbound sessions by age
	suspended  map[peer.ID]time.Time // no automatic sync with these peers until then
	opAdded    chan struct{}         // closed and replaced whenever ops are added
	scoreMu    sync.Mutex
	scores     map[peer.ID]float64
	notifiee   *network.NotifyBundle
	subMu      sync.Mutex
	subs       map[*subscriber]bool
	closed     bool
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	bytesIn    int64 // sync bytes received (for benchmarks)
	bytesInMu  sync.Mutex
	finalCount int
}

// New validates cfg and deps, loads the op set from the datastore, joins
// the topic and registers the sync handler.
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
		log:       deps.Logger.With("component", "gossip"),
		st:        newStore(namespace.Wrap(deps.Datastore, datastore.NewKey("/gossip"))),
		rejects:   newRejectCache(cfg.RejectCacheSize),
		evidence:  map[string]bool{},
		orphans:   newOrphanPool(cfg.OrphanMax, cfg.OrphanTTL),
		syncQ:     make(chan peer.ID, 64),
		idsCap:    maxIDsPerReply,
		outbound:  map[peer.ID]bool{},
		inbound:   map[peer.ID]*inSession{},
		suspended: map[peer.ID]time.Time{},
		opAdded:   make(chan struct{}),
		scores:    map[peer.ID]float64{},
		subs:      map[*subscriber]bool{},
	}
	bad, err := s.st.load(ctx, s.netID)
	if err != nil {
		return nil, fmt.Errorf("gossip: load store: %w", err)
	}
	if bad > 0 {
		s.log.Warn("stored ops that could not be loaded were kept and skipped", "count", bad)
	}
	s.log.Info("loaded op set", "ops", len(s.st.ops))
	s.mu.Lock()
	log, _, _ := s.st.finalLog(s.deps.Rules())
	s.finalCount = len(log)
	s.mu.Unlock()

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

// Close leaves the topic, stops the sync protocol and every goroutine. It
// is safe to call more than once. The datastore stays open (node owns it).
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
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
		s.wg.Wait()
	})
	return nil
}

func (s *Service) now() time.Time { return s.deps.Now() }

// lookupLocked reads the op set; callers hold s.mu.
func (s *Service) lookupLocked(id OpID) (*Op, bool) { return s.st.get(id) }

// validate runs Validate against the current set under a read lock.
func (s *Service) validate(raw []byte) (*Op, error) {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Validate(raw, s.netID, rules, s.lookupLocked)
}

// addOps persists and indexes validated ops, announces the changes and
// releases orphans that waited for them. It returns how many were new.
func (s *Service) addOps(ops []*Op) (int, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	seen := s.now() // local first-seen time, never replicated
	if err := s.st.persist(s.ctx, ops, seen); err != nil {
		return 0, fmt.Errorf("gossip: persist ops: %w", err)
	}
	rules := s.deps.Rules()
	var events []Event
	var added []*Op
	s.mu.Lock()
	for _, op := range ops {
		if !s.st.index(op, seen) {
			continue
		}
		added = append(added, op)
		switch op.Kind {
		case KindProposal:
			events = append(events, Event{Kind: ProposalChanged, ProposalID: ProposalIDFor(op)})
		case KindVote:
			events = append(events, Event{Kind: ProposalChanged, ProposalID: op.Vote.ProposalID})
		case KindReport:
			events = append(events, Event{Kind: ReportAdded, Seq: op.Report.Seq, ProposalID: op.Report.ProposalID})
		}
	}
	events = append(events, s.updateFinalLocked(rules)...)
	ch := s.opAdded
	if len(added) > 0 {
		s.opAdded = make(chan struct{})
	}
	s.mu.Unlock()
	if len(added) > 0 {
		close(ch)
	}
	s.emit(events...)
	for _, op := range added {
		for _, o := range s.orphans.waitingFor(op.ID) {
			s.ingest(o.raw, o.from)
		}
	}
	return len(added), nil
}

// updateFinalLocked marks and persists entries that became final and
// returns their events.
func (s *Service) updateFinalLocked(rules genesis.Rules) []Event {
	log, newly, conflicts := s.st.finalLog(rules)
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
			break
		}
		s.st.final[e.Seq] = h
		events = append(events, Event{Kind: EntryFinal, Seq: e.Seq, ProposalID: e.ProposalID},
			Event{Kind: ProposalChanged, ProposalID: e.ProposalID})
	}
	s.finalCount = len(log)
	return events
}

// ingest validates and adds one op from the network (from may be ""),
// holding it as an orphan when deps are missing. It returns the
// validation error, if any.
func (s *Service) ingest(raw []byte, from peer.ID) error {
	op, err := s.validate(raw)
	switch {
	case err == nil:
		_, err = s.addOps([]*Op{op})
		return err
	case errors.Is(err, ErrMissingDeps):
		var me *MissingDepsError
		errors.As(err, &me)
		if s.orphans.add(op.ID, &orphan{raw: raw, from: from, added: time.Now(), missing: me.Missing}) && from != "" {
			s.requestSync(from)
		}
		return err
	case errors.Is(err, ErrDuplicate):
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
			if n := s.orphans.expire(time.Now()); n > 0 {
				s.log.Debug("orphans expired", "count", n)
			}
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
