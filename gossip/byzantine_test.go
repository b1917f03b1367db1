package gossip

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// grindAlias searches (birthday attack) two proposal drafts by key whose
// short aliases collide: same second, first 8 hex digits of the op ID
// equal. The op ID does not cover the signature, so a try costs one
// encode and one SHA-256; about 2^16 tries find a 32-bit collision.
func grindAlias(t *testing.T, n *tnode) (a, b opDraft) {
	t.Helper()
	author := []byte(n.id)
	ts := time.Unix(1800000000, 0)
	seen := map[[4]byte]int{}
	draft := func(i int) opDraft {
		body := testBody(1)
		return opDraft{Kind: KindProposal, Seq: uint64(i + 1), Lamport: 1, TS: ts,
			Body: proposalBody{Type: "code_upgrade", Title: fmt.Sprintf("nonce %d", i), Version: body.Version,
				PackageURL: body.PackageURL, PackageHash: body.PackageHash, PackageSize: body.PackageSize}}
	}
	for i := 0; i < 1<<22; i++ {
		d := draft(i)
		bb, err := encMode.Marshal(d.Body)
		if err != nil {
			t.Fatal(err)
		}
		ub, err := encMode.Marshal(unsignedOp{V: opVersion, Net: testNet, Kind: d.Kind, Author: author,
			Seq: d.Seq, Lamport: d.Lamport, TS: ts.UnixMilli(), Deps: [][]byte{}, Body: bb})
		if err != nil {
			t.Fatal(err)
		}
		id := opID(ub)
		var k [4]byte
		copy(k[:], id[:4])
		if j, ok := seen[k]; ok {
			return draft(j), d
		}
		seen[k] = i
	}
	t.Fatal("no collision found")
	return
}

// TestByzantineNameGrinding: a member grinds two of its own proposals —
// one to campaign for, one to swap in — so that their short names
// (upgrade_<date>_<8 hex>, 32 bits) collide. Before, the name resolved
// to the smaller op ID, so votes "by name" could go to the other package.
// Now proposals are named by 128 bits of the op ID; the short alias is
// refused while it is ambiguous, everywhere, and votes bound to each
// proposal's op ID stay where they were cast.
func TestByzantineNameGrinding(t *testing.T) {
	nodes, _ := smallNet(t, 3, 1, genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true})
	rogue := nodes[0]
	da, db := grindAlias(t, rogue)
	ctx := context.Background()
	var ids []string
	for _, d := range []opDraft{da, db} {
		op, err := encodeOp(rogue.key, testNet, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := rogue.svc.Relay(ctx, op.Raw); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, proposalIDFor(op))
	}
	a, b := ids[0], ids[1]
	alias := a[:len(a)-24]
	if b[:len(b)-24] != alias || a == b {
		t.Fatalf("grinding did not collide: %s %s", a, b)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "both proposals everywhere", func() bool {
			_, e1 := n.svc.Proposal(a, time.Now())
			_, e2 := n.svc.Proposal(b, time.Now())
			return e1 == nil && e2 == nil
		})
		if _, err := n.svc.Proposal(alias, time.Now()); !errors.Is(err, ErrAmbiguousProposal) {
			t.Fatalf("ambiguous alias resolved: %v", err)
		}
		if err := n.svc.PublishVote(ctx, alias, "yes"); !errors.Is(err, ErrAmbiguousProposal) && !errors.Is(err, ErrNotEligible) {
			t.Fatalf("vote by ambiguous alias: %v", err)
		}
	}
	// Votes by canonical name go to that proposal only.
	if err := nodes[1].svc.PublishVote(ctx, a, "yes"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "the vote everywhere", func() bool {
			va, _ := n.svc.Proposal(a, time.Now())
			return len(va.Votes) == 1
		})
		if vb, _ := n.svc.Proposal(b, time.Now()); len(vb.Votes) != 0 {
			t.Fatalf("a vote on %s counted on %s", a, b)
		}
	}
}

// TestByzantineVoteFlooder: a member publishes thousands of alternating
// votes on one proposal as fast as it can. Every node keeps one vote of
// it (the latest), the op set stays small, the flooding peer's score
// drops at its neighbours, and after the flood every node agrees on the
// flooder's final vote.
func TestByzantineVoteFlooder(t *testing.T) {
	nodes, _ := smallNet(t, 3, 1, genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: false})
	rogue, victim := nodes[0], nodes[2]
	ctx := context.Background()
	pid, err := nodes[1].svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "proposal everywhere", func() bool { _, err := n.svc.Proposal(pid, time.Now()); return err == nil })
	}
	const flood = 2000
	last := ""
	for i := 0; i < flood; i++ {
		last = []string{ChoiceApproval, ChoiceRejection}[i%2]
		if err := rogue.svc.PublishVote(ctx, pid, last); err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	if n := rogue.svc.OpCount(); n != 2 {
		t.Fatalf("the flooder itself holds %d ops, want the proposal and one vote", n)
	}
	for _, n := range nodes[1:] {
		if got := n.svc.OpCount(); got > 2 {
			t.Fatalf("%s holds %d ops during the flood", n.name, got)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the flooder's score drops at the victim", func() bool {
		return victim.svc.appScore(rogue.id) < 0
	})
	// Sync brings every node to the flooder's latest vote.
	for _, n := range nodes[1:] {
		// The periodic sync may hold the flooder's session slot: retry.
		var err error
		testutil.WaitFor(t, 10*time.Second, "a sync session with the flooder", func() bool {
			_, err = n.svc.syncWith(ctx, rogue.id)
			return !errors.Is(err, errSyncRefused)
		})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := n.svc.Proposal(pid, time.Now())
		if len(v.Votes) != 1 || v.Votes[0].Voter != rogue.id || v.Votes[0].Choice != last {
			t.Fatalf("%s sees votes %+v, want the flooder's last (%s)", n.name, v.Votes, last)
		}
		if got := n.svc.OpCount(); got != 2 {
			t.Fatalf("%s holds %d ops after the flood", n.name, got)
		}
	}
}
