package gossip

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func TestWeight(t *testing.T) {
	for rep, want := range map[float64]float64{0: 1, 1: 2, 3: 3, 7: 4, 10: 1 + math.Log2(11)} {
		t.Run(fmt.Sprintf("reputation %v", rep), func(t *testing.T) {
			if got := voterWeight(rep); math.Abs(got-want) > 1e-12 {
				t.Errorf("voterWeight(%v) = %v, want %v", rep, got, want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 60, EarlyApproval: true}
	noEarly := gov
	noEarly.EarlyApproval = false
	cases := []struct {
		name       string
		t          Tally
		g          genesis.Governance
		periodOver bool
		want       string
	}{
		{"early approval", Tally{Approval: 6, Eligible: 10}, gov, false, StatusApproved},
		{"exactly half is not early", Tally{Approval: 5, Eligible: 10}, gov, false, StatusVoting},
		{"early approval off", Tally{Approval: 6, Eligible: 10}, noEarly, false, StatusVoting},
		{"end: majority with quorum", Tally{Approval: 3, Rejection: 2, Eligible: 10, VotedShare: 0.5}, gov, true, StatusApproved},
		{"end: tie rejects", Tally{Approval: 3, Rejection: 3, Eligible: 10, VotedShare: 0.6}, gov, true, StatusRejected},
		{"end: no quorum", Tally{Approval: 4, Eligible: 10, VotedShare: 0.4}, gov, true, StatusRejected},
		{"end: majority rejects", Tally{Approval: 2, Rejection: 4, Eligible: 10, VotedShare: 0.6}, gov, true, StatusRejected},
		{"end: nobody voted", Tally{Eligible: 10}, gov, true, StatusRejected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := decide(c.t, c.g, c.periodOver); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// voteOp signs a vote on proposal p by key with seq.
func voteOp(t *testing.T, key crypto.PrivKey, p *Op, seq uint64, choice string) *Op {
	t.Helper()
	op, err := encodeOp(key, testNet, opDraft{Kind: KindVote, Seq: seq, Lamport: seq, TS: time.Unix(0, 0),
		Deps: []OpID{p.ID}, Body: voteBody{ProposalID: proposalIDFor(p), Choice: choice}})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func TestEffectiveVotesAndTally(t *testing.T) {
	keys := make([]crypto.PrivKey, 5)
	for i := range keys {
		keys[i] = newKey(t)
	}
	rules := makeRules(keys, 1, genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 60, EarlyApproval: true})
	ids := make([]peer.ID, len(keys))
	for i, k := range keys {
		ids[i], _ = peer.IDFromPrivateKey(k)
	}
	rules.Reputation[ids[0]] = 0 // weight 1
	rules.Reputation[ids[1]] = 3 // weight 3
	rules.Reputation[ids[2]] = 1 // weight 2
	rules.Reputation[ids[3]] = 7 // weight 4
	delete(rules.Reputation, ids[4])
	outsider := keys[4]

	p := signedProposal(t, testNet, 1)
	st := newStore(memDS())
	st.index(p, time.Unix(100, 0))
	add := func(op *Op) {
		if _, err := validateOp(op.Raw, testNet, rules, st.get); err != nil {
			if err == ErrDuplicate {
				return
			}
			t.Fatalf("validate: %v", err)
		}
		st.index(op, time.Unix(100, 0))
	}
	add(voteOp(t, keys[0], p, 1, ChoiceApproval))
	// Vote change: seq 2 rejection, then seq 3 approval again.
	add(voteOp(t, keys[1], p, 2, ChoiceRejection))
	add(voteOp(t, keys[1], p, 3, ChoiceApproval))
	// Equivocation: two different votes at seq 1 → no vote.
	add(voteOp(t, keys[2], p, 1, ChoiceApproval))
	add(voteOp(t, keys[2], p, 1, ChoiceRejection))
	add(voteOp(t, keys[3], p, 1, ChoiceRejection))
	// Not eligible: rejected.
	if _, err := validateOp(voteOp(t, outsider, p, 1, ChoiceApproval).Raw, testNet, rules, st.get); err == nil {
		t.Fatal("vote of a non-eligible peer accepted")
	}
	ps := st.proposals[proposalIDFor(p)]
	votes, eq := effectiveVotes(ps, rules)
	if len(votes) != 3 || len(eq) != 1 || eq[0] != ids[2] {
		t.Fatalf("votes %+v equivocators %v", votes, eq)
	}
	tally := computeTally(votes, rules)
	want := Tally{Approval: 1 + 3, Rejection: 4, Eligible: 1 + 3 + 2 + 4}
	want.VotedShare = 8.0 / 10
	if tally != want {
		t.Fatalf("tally %+v, want %+v", tally, want)
	}
	// Tie at the end of the period rejects.
	v := st.proposalView(ps, rules, nil, time.Unix(100, 0).Add(time.Minute))
	if v.Status != StatusRejected {
		t.Fatalf("status %s, want rejected (tie)", v.Status)
	}
	// Before the end it is still voting.
	if v := st.proposalView(ps, rules, nil, time.Unix(130, 0)); v.Status != StatusVoting {
		t.Fatalf("status %s, want voting", v.Status)
	}
	// keys[3] changes to approval: 8 of 10 approve, early approval.
	add(voteOp(t, keys[3], p, 2, ChoiceApproval))
	if v := st.proposalView(ps, rules, nil, time.Unix(130, 0)); v.Status != StatusApproved || v.Tally.Approval != 8 {
		t.Fatalf("after vote change: %+v", v)
	}
	// Open voting: the outsider's vote counts with weight 1 and adds to the
	// eligible weight.
	open := rules
	open.Governance.OpenVoting = true
	add2 := voteOp(t, outsider, p, 1, ChoiceRejection)
	if _, err := validateOp(add2.Raw, testNet, open, st.get); err != nil {
		t.Fatal(err)
	}
	st.index(add2, time.Unix(100, 0))
	votes, _ = effectiveVotes(ps, open)
	if got := computeTally(votes, open); got.Eligible != 11 || got.Rejection != 1 {
		t.Fatalf("open voting tally %+v", got)
	}
}

// TestProposalIDCollision: two proposal ops with one proposal ID resolve to
// the smaller op ID whatever the arrival order, and votes stay with the op
// they depend on.
func TestProposalIDCollision(t *testing.T) {
	a := signedProposal(t, testNet, 1)
	b := *signedProposal(t, testNet, 2)
	b.TS = a.TS
	b.ID = a.ID
	b.ID[31] ^= 1 // same first 4 bytes: same proposal ID
	if proposalIDFor(a) != proposalIDFor(&b) {
		t.Fatal("test setup: IDs differ")
	}
	small, large := a, &b
	if string(b.ID[:]) < string(a.ID[:]) {
		small, large = &b, a
	}
	for _, order := range [][]*Op{{small, large}, {large, small}} {
		st := newStore(memDS())
		for _, op := range order {
			st.index(op, time.Unix(1, 0))
		}
		if got := st.proposals[proposalIDFor(a)].op; got != small {
			t.Fatal("name does not resolve to the smallest op ID")
		}
		v := &Op{ID: OpID{1}, Kind: KindVote, Author: "voter", Seq: 1, Deps: []OpID{large.ID},
			Vote: &VoteBody{ProposalID: proposalIDFor(a), Choice: ChoiceApproval}}
		st.index(v, time.Unix(1, 0))
		if len(st.propByOp[small.ID].votes) != 0 || len(st.propByOp[large.ID].votes) != 1 {
			t.Fatal("vote not bound to its dep")
		}
	}
}

// The cached eligible weight follows the rules: a new reputation map of
// the same size (an upgrade that changes reputations) is summed again, and
// every answer equals eligibleWeight's.
func TestEligibleCacheFollowsRules(t *testing.T) {
	ids := []peer.ID{"a", "b", "c"}
	before := genesis.Rules{Reputation: map[peer.ID]float64{ids[0]: 0, ids[1]: 1, ids[2]: 3}}
	after := genesis.Rules{Reputation: map[peer.ID]float64{ids[0]: 7, ids[1]: 7, ids[2]: 7}}
	var c eligibleCache
	for _, r := range []genesis.Rules{before, before, after, after, before} {
		if got, want := c.weight(r), eligibleWeight(r); got != want {
			t.Fatalf("cached eligible weight %v, want %v", got, want)
		}
	}
	if c.weight(before) == c.weight(after) {
		t.Fatal("two different reputation maps gave one eligible weight")
	}
}
