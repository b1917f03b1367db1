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
const maxMessageSize = MaxOpSize + 4<<10

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
func scoreParams(topic string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
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
			AppSpecificScore:            func(peer.ID) float64 { return 0 },
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

func (s *Service) joinTopic() error {
	name := TopicName(s.netID)
	params, thresholds := scoreParams(name)
	ps, err := pubsub.NewGossipSub(s.ctx, s.deps.Host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(msgID),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.recordScores), time.Second),
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(maxMessageSize),
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

// validateMsg is the topic validator: Validate, mapped onto GossipSub
// results. Own messages were validated before publishing.
func (s *Service) validateMsg(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.self {
		return pubsub.ValidationAccept
	}
	op, err := s.validate(m.GetData())
	switch {
	case err == nil:
		m.ValidatorData = op
		return pubsub.ValidationAccept
	case errors.Is(err, ErrDuplicate):
		return pubsub.ValidationIgnore
	case errors.Is(err, ErrMissingDeps):
		var me *MissingDepsError
		errors.As(err, &me)
		if s.orphans.add(op.ID, &orphan{raw: m.GetData(), from: from, added: time.Now(), missing: me.Missing}) {
			s.requestSync(from)
		}
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
		if _, err := s.addOps([]*Op{op}); err != nil {
			s.log.Error("add gossip op", "err", err)
		}
	}
}

func randIntn(n int) int { return rand.IntN(n) }
