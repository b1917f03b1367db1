package gossip

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// TestAdversarialGossip: a peer floods the topic with junk, forged,
// foreign, non-canonical and unauthorised ops and replays old ones. None
// changes the victim's views, the attacker's score drops, and honest ops
// still flow.
func TestAdversarialGossip(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	nodes, rb := smallNet(t, 3, 2, gov)
	victim := nodes[2]
	ctx := context.Background()
	pid, err := nodes[0].svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "proposal at victim", func() bool { _, err := victim.svc.Proposal(pid, time.Now()); return err == nil })
	prop, _ := victim.svc.Proposal(pid, time.Now())
	propID, _ := ParseOpID(prop.OpID)
	propOp, _ := victim.svc.st.get(propID)

	// The attacker is eligible to vote (it is in the reputation map) but
	// is not a validator.
	akey := newKey(t)
	r := rb.get()
	aid, _ := peer.IDFromPrivateKey(akey)
	r.Reputation = maps.Clone(r.Reputation)
	r.Reputation[aid] = 1
	rb.set(r)
	ah, _ := newHost(t, akey)
	t.Cleanup(func() { ah.Close() })
	aps, err := pubsub.NewGossipSub(ctx, ah, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(), pubsub.WithMessageIdFn(msgID), pubsub.WithMaxMessageSize(1<<20),
		pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	atopic, err := aps.Join(topicName(testNet))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atopic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if err := ah.Connect(ctx, peer.AddrInfo{ID: victim.id, Addrs: victim.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "attacker sees the victim in the topic", func() bool {
		for _, p := range atopic.ListPeers() {
			if p == victim.id {
				return true
			}
		}
		return false
	})

	before := viewDigest(victim.svc, time.Now())
	entry := execlog.Entry{Seq: 1, ProposalID: pid, Version: prop.Body.Version, PackageURL: prop.Body.PackageURL,
		PackageHash: prop.Body.PackageHash, PackageSize: prop.Body.PackageSize}
	// attacks builds distinct bad ops for round i (distinct bytes, so
	// GossipSub's duplicate filter does not hide them).
	attacks := func(i int) map[string][]byte {
		seq := uint64(10*i + 1)
		ratify, err := encodeOp(akey, testNet, opDraft{Kind: KindRatify, Seq: seq, Deps: []OpID{propID},
			Body: ratifyBody{Entry: entry, EntryHash: entry.Hash()}})
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := encodeOp(akey, "ffffffffffffffff", opDraft{Kind: KindVote, Seq: seq + 1, Deps: []OpID{propID},
			Body: voteBody{ProposalID: pid, Choice: ChoiceApproval}})
		if err != nil {
			t.Fatal(err)
		}
		forged := voteOp(t, akey, propOp, seq+2, ChoiceApproval).Raw
		forged[len(forged)-1] ^= 0xff
		nonCanon := append([]byte{0xa2, 0x78, 0x02}, voteOp(t, akey, propOp, seq+3, ChoiceApproval).Raw[2:]...)
		oversize := make([]byte, maxOpSize+100)
		oversize[0] = byte(i)
		return map[string][]byte{
			"junk":                      append([]byte("not an op at all"), byte(i)),
			"ratify from non-validator": ratify.Raw,
			"foreign network":           foreign.Raw,
			"forged signature":          forged,
			"non-canonical":             nonCanon,
			"oversize":                  oversize,
		}
	}
	for name, raw := range attacks(1000) {
		t.Run("sync path/"+name, func(t *testing.T) {
			if err := victim.svc.Ingest(raw); !errors.Is(err, ErrInvalidOp) {
				t.Fatalf("got %v, want ErrInvalidOp", err)
			}
		})
	}
	// The oversize message goes last: the victim resets the stream it
	// arrives on, which would drop what follows.
	for i := 0; i < 10; i++ {
		for name, raw := range attacks(i) {
			if name == "oversize" {
				continue
			}
			if err := atopic.Publish(ctx, raw); err != nil {
				t.Fatalf("attacker publish %s: %v", name, err)
			}
		}
	}
	if err := atopic.Publish(ctx, attacks(99)["oversize"]); err != nil {
		t.Fatal(err)
	}
	// Replays of valid old ops are duplicates: ignored, no effect.
	if err := atopic.Publish(ctx, propOp.Raw); err != nil {
		t.Fatal(err)
	}
	if err := victim.svc.Ingest(propOp.Raw); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}
	testutil.WaitFor(t, 15*time.Second, "attacker score drops", func() bool {
		s, ok := victim.svc.peerScore(aid)
		return ok && s < 0
	})
	if s, _ := victim.svc.peerScore(nodes[0].id); s < 0 {
		t.Fatalf("honest peer's score dropped to %v", s)
	}
	if got := viewDigest(victim.svc, time.Now()); got != before {
		t.Fatalf("attack changed the views:\n%s\n%s", before, got)
	}
	// Honest traffic still flows.
	if err := nodes[1].svc.PublishVote(ctx, pid, "yes"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "honest vote at victim", func() bool {
		v, _ := victim.svc.Proposal(pid, time.Now())
		return len(v.Votes) == 1
	})
}

// TestEquivocationAcrossNodes: two different votes with the same seq,
// delivered to different nodes, end up on both and count as no vote.
func TestEquivocationAcrossNodes(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	nodes, _ := smallNet(t, 3, 1, gov)
	ctx := context.Background()
	pid, err := nodes[0].svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	// Every node holds the proposal before the votes are ingested (a vote
	// that arrives first waits for it as an orphan).
	for _, nd := range nodes[1:] {
		testutil.WaitFor(t, 10*time.Second, "proposal", func() bool { _, err := nd.svc.Proposal(pid, time.Now()); return err == nil })
	}
	v, _ := nodes[0].svc.Proposal(pid, time.Now())
	pidOp, _ := ParseOpID(v.OpID)
	prop, _ := nodes[0].svc.st.get(pidOp)
	yes := voteOp(t, nodes[2].key, prop, 7, ChoiceApproval)
	no := voteOp(t, nodes[2].key, prop, 7, ChoiceRejection)
	if err := nodes[0].svc.Ingest(yes.Raw); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].svc.Ingest(no.Raw); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes[:2] {
		nd.svc.syncWith(ctx, nodes[1-indexOf(nodes, nd)].id)
	}
	for _, nd := range nodes {
		testutil.WaitFor(t, 10*time.Second, "equivocation evidence", func() bool {
			v, _ := nd.svc.Proposal(pid, time.Now())
			return len(v.Equivocators) == 1 && len(v.Votes) == 0 && v.Tally.Approval == 0 && v.Tally.Rejection == 0
		})
	}
}

func indexOf(nodes []*tnode, n *tnode) int {
	for i, x := range nodes {
		if x == n {
			return i
		}
	}
	return -1
}

// TestSyncSessionBounds: garbage on the sync protocol ends that session
// only, and a peer cannot hold two sessions at once.
func TestSyncSessionBounds(t *testing.T) {
	gov := genesis.DefaultGovernance()
	nodes, _ := smallNet(t, 1, 1, gov)
	ctx := context.Background()
	if _, err := nodes[0].svc.PublishProposal(ctx, testBody(1)); err != nil {
		t.Fatal(err)
	}
	// A bare host (no service of its own, so no on-connect sync) speaks
	// the protocol by hand.
	bare, _ := newHost(t, newKey(t))
	t.Cleanup(func() { bare.Close() })
	if err := bare.Connect(ctx, peer.AddrInfo{ID: nodes[0].id, Addrs: nodes[0].h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s1, err := bare.NewStream(ctx, nodes[0].id, SyncProtocol(testNet))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	// Wait until the first session is registered, then open a second.
	w1 := bufio.NewWriter(s1)
	r1 := bufio.NewReader(s1)
	if _, err := writeFrame(w1, syncRequest{Type: reqFingerprint}); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(r1); err != nil {
		t.Fatal(err)
	}
	s2, err := bare.NewStream(ctx, nodes[0].id, SyncProtocol(testNet))
	if err == nil {
		w2 := bufio.NewWriter(s2)
		writeFrame(w2, syncRequest{Type: reqFingerprint})
		// Refused: an err reply ("busy") or a reset, never a fingerprint.
		if b, err := readFrame(bufio.NewReader(s2)); err == nil {
			if _, derr := decodeSyncReply(b); !errors.Is(derr, errSyncRefused) {
				t.Fatalf("second concurrent session from one peer was served: %v", derr)
			}
		}
		s2.Close()
	}
	// Garbage ends the session with an error reply.
	w1.Write([]byte{0x05, 'h', 'e', 'l', 'l', 'o'})
	w1.Flush()
	b, err := readFrame(r1)
	if err == nil {
		if _, derr := decodeSyncReply(b); derr == nil {
			t.Fatal("garbage request got a normal reply")
		}
	}
	s1.Close()
	// A fresh session works.
	testutil.WaitFor(t, 5*time.Second, "sync after garbage", func() bool {
		s3, err := bare.NewStream(ctx, nodes[0].id, SyncProtocol(testNet))
		if err != nil {
			return false
		}
		defer s3.Close()
		w3 := bufio.NewWriter(s3)
		if _, err := writeFrame(w3, syncRequest{Type: reqFingerprint}); err != nil {
			return false
		}
		b, err := readFrame(bufio.NewReader(s3))
		if err != nil {
			return false
		}
		rep, err := decodeSyncReply(b)
		return err == nil && len(rep.FP) == fpSize
	})
}
