package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxMessageSize leaves room for the pubsub envelope around one op.
const maxMessageSize = maxOpSize + 4<<10

// msgID is the message ID: SHA-256 of the data, so the same op relayed by
// anyone is one message.
func msgID(m *pb.Message) string {
	sum := sha256.Sum256(m.GetData())
	return string(sum[:])
}

// scoreParams: invalid messages cost a lot and decay slowly; delivering
// first earns a little; IP colocation is off (many nodes share loopback or
// a NAT in small networks); mesh delivery deficits are not penalised (the
// topic is quiet by nature).
//
// app is the application-specific score: minus the (decaying) number of
// ops beyond the per-author bounds or rate that the peer delivered first.
func scoreParams(topic string, app func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	return &pubsub.PeerScoreParams{
			Topics: map[string]*pubsub.TopicScoreParams{topic: {
				TopicWeight:                    1,
				TimeInMeshWeight:               0.01,
				TimeInMeshQuantum:              time.Second,
				TimeInMeshCap:                  100,
				FirstMessageDeliveriesWeight:   1,
				FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
				FirstMessageDeliveriesCap:      20,
				InvalidMessageDeliveriesWeight: -100,
				InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
			}},
			TopicScoreCap:               50,
			AppSpecificScore:            app,
			AppSpecificWeight:           1,
			IPColocationFactorThreshold: 1,
			BehaviourPenaltyWeight:      -1,
			BehaviourPenaltyThreshold:   6,
			BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
			DecayInterval:               time.Second,
			DecayToZero:                 0.01,
			RetainScore:                 10 * time.Minute,
		}, &pubsub.PeerScoreThresholds{
			GossipThreshold:             -100,
			PublishThreshold:            -500,
			GraylistThreshold:           -1000,
			AcceptPXThreshold:           10,
			OpportunisticGraftThreshold: 5,
		}
}

// peerOutboundQueue is how many RPCs GossipSub queues per peer before it
// drops (Drops.RPCs).
const peerOutboundQueue = 256

// gossipParams are GossipSub's defaults with lazy gossip (IHAVE) bounded:
// each heartbeat a node advertises the message IDs of its last three
// heartbeats to Dlazy (6) peers outside its mesh, however many peers it
// has. With the default GossipFactor (a quarter of its non-mesh peers) a
// node connected to most of a 1000-node network — a bootstrap node, a DHT
// server — sent ~250 IHAVEs of up to 1000 IDs (32 KiB) every second while
// the network voted: more than a 20 Mbit/s uplink carries, so its queues
// grew without bound and what else it sent (raft heartbeats, on a
// validator) queued behind them (docs/benchmarks.md, scale). Lazy gossip
// only repairs what the mesh missed; the op-set sync repairs the rest.
//
// The same node also receives most of the network's IHAVEs: a node with
// few peers has few outside its mesh, and the well-connected ones are most
// of them. In 300 simulated nodes the 7 DHT servers each took 215,000
// advertised IDs during a vote (8.4 MB of control messages, a regular node
// 1–3 MB in all) and were the last to hold the entry as final and to
// execute it; in 1000 nodes they executed up to a minute after the rest.
// So an IHAVE carries at most maxIHaveIDs (64) IDs, a random subset of the
// window: a quiet network never has more, and in a burst the mesh delivers
// and the report repair and op-set sync catch up what the mesh missed. The
// same bound caps the IDs a node accepts (and asks for with IWANT) from one
// peer per heartbeat.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.GossipFactor = 0
	p.MaxIHaveLength = maxIHaveIDs
	return p
}

// maxIHaveIDs bounds the message IDs of one IHAVE (see gossipParams).
const maxIHaveIDs = 64

func (s *Service) joinTopic() error {
	name := topicName(s.netID)
	params, thresholds := scoreParams(name, s.appScore)
	ps, err := pubsub.NewGossipSub(s.ctx, s.deps.Host,
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(msgID),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.recordScores), time.Second),
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(maxMessageSize),
		pubsub.WithRawTracer(&s.drops),
		// A whole network voting at once is a burst of ops to every peer;
		// with the default queue of 32 RPCs per peer a node on a 20 Mbit/s
		// uplink dropped some (300 simulated nodes: ~1900 RPCs in one
		// story), and the nodes that missed a validator's ratify op through
		// both the mesh and lazy gossip held the entry as final only after
		// the next op-set sync, minutes later. RPCs are pointers to decoded
		// messages already in memory; 256 of them per peer is cheap.
		pubsub.WithPeerOutboundQueueSize(peerOutboundQueue),
	)
	if err != nil {
		return err
	}
	if err := ps.RegisterTopicValidator(name, s.validateMsg); err != nil {
		return err
	}
	t, err := ps.Join(name)
	if err != nil {
		return err
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(256))
	if err != nil {
		t.Close()
		return err
	}
	s.ps, s.topic, s.sub = ps, t, sub
	return nil
}

func (s *Service) recordScores(m map[peer.ID]float64) {
	s.scoreMu.Lock()
	s.scores = m
	s.scoreMu.Unlock()
}

// peerScore is the last GossipSub score of p seen by this node.
func (s *Service) peerScore(p peer.ID) (float64, bool) {
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	v, ok := s.scores[p]
	return v, ok
}

// validateMsg is the topic validator: validateOp, mapped onto GossipSub
// results. Own messages were validated before publishing.
func (s *Service) validateMsg(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.self {
		return pubsub.ValidationAccept
	}
	op, err := s.validate(m.GetData())
	if err == nil && !s.allowRate(op) {
		// An author publishing faster than any honest node would: the op
		// is dropped here (sync may still bring it later, so every node
		// ends with the same set) and the peer that delivered it pays.
		s.noteOverrun(from)
		return pubsub.ValidationIgnore
	}
	switch {
	case err == nil:
		m.ValidatorData = op
		if op.Report != nil {
			s.noteReport(op.Report.Seq, from)
		}
		return pubsub.ValidationAccept
	case errors.Is(err, ErrDuplicate):
		return pubsub.ValidationIgnore
	case errors.Is(err, ErrMissingDeps):
		var me *missingDepsError
		errors.As(err, &me)
		if s.orphans.add(op.ID, &orphan{raw: m.GetData(), from: from, added: s.now(), missing: me.Missing}) {
			s.requestSync(from)
		}
		return pubsub.ValidationIgnore
	case errors.Is(err, ErrPendingRules):
		s.orphans.add(op.ID, &orphan{raw: m.GetData(), from: from, added: s.now(), missing: []OpID{rulesDep}})
		return pubsub.ValidationIgnore
	case errors.Is(err, ErrSuperseded):
		s.mu.Lock()
		s.noteDroppedLocked(op.ID)
		s.mu.Unlock()
		s.noteOverrun(from)
		return pubsub.ValidationIgnore
	default:
		s.log.Debug("rejected gossip op", "from", from, "err", err)
		return pubsub.ValidationReject
	}
}

// readLoop adds accepted gossip ops to the set.
func (s *Service) readLoop() {
	defer s.wg.Done()
	for {
		m, err := s.sub.Next(s.ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == s.self {
			continue
		}
		op, ok := m.ValidatorData.(*Op)
		if !ok {
			continue
		}
		if op.Kind == KindAttest {
			s.noteAttest(op)
			continue
		}
		if _, err := s.addOps([]*Op{op}); err != nil {
			s.log.Error("add gossip op", "err", err)
		}
	}
}

func randIntn(n int) int { return rand.IntN(n) }

// Rate of ops per author on the topic (a token bucket): honest nodes
// publish a few ops per proposal; a burst of authorBurst is fine, beyond
// that one op per authorRefill.
const (
	authorBurst  = 32
	authorRefill = 500 * time.Millisecond
)

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// allowRate takes one token of op's author. Attest ops (a few per entry
// from each validator) are not counted.
func (s *Service) allowRate(op *Op) bool {
	if op.Kind == KindAttest || op.Author == s.self {
		return true
	}
	now := s.now()
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	if s.rate == nil || len(s.rate) > 1<<14 {
		s.rate = map[peer.ID]*tokenBucket{}
	}
	b := s.rate[op.Author]
	if b == nil {
		b = &tokenBucket{tokens: authorBurst, at: now}
		s.rate[op.Author] = b
	}
	b.tokens = min(authorBurst, b.tokens+float64(now.Sub(b.at))/float64(authorRefill))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// noteOverrun counts an op beyond the bounds delivered first by p.
func (s *Service) noteOverrun(p peer.ID) {
	if p == "" || p == s.self {
		return
	}
	s.scoreMu.Lock()
	s.overrun[p]++
	s.scoreMu.Unlock()
}

// decayOverrun halves every peer's overrun count.
func (s *Service) decayOverrun() {
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	for p, v := range s.overrun {
		if v < 1 {
			delete(s.overrun, p)
		} else {
			s.overrun[p] = v / 2
		}
	}
}

// appScore is GossipSub's application-specific score of p.
func (s *Service) appScore(p peer.ID) float64 {
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	return -s.overrun[p]
}
