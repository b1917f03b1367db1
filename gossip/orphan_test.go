package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func TestOrphanPoolBounds(t *testing.T) {
	p := newOrphanPool(3, time.Minute)
	dep := OpID{9}
	t0 := time.Unix(1000, 0)
	for i := byte(1); i <= 5; i++ {
		p.add(OpID{i}, &orphan{raw: []byte{i}, added: t0.Add(time.Duration(i) * time.Second), missing: []OpID{dep}})
	}
	if p.len() != 3 {
		t.Fatalf("pool holds %d, want 3 (bounded)", p.len())
	}
	if p.add(OpID{5}, &orphan{missing: []OpID{dep}}) {
		t.Fatal("duplicate orphan added")
	}
	// The oldest two were dropped; the rest wait for dep.
	got := p.waitingFor(dep)
	if len(got) != 3 || got[0].raw[0] != 3 {
		t.Fatalf("released %d orphans", len(got))
	}
	if p.len() != 0 || len(p.byDep) != 0 {
		t.Fatal("released orphans still held")
	}
	p.add(OpID{7}, &orphan{added: t0, missing: []OpID{dep}})
	p.add(OpID{8}, &orphan{added: t0.Add(2 * time.Minute), missing: []OpID{dep}})
	if n := p.expire(t0.Add(2*time.Minute + time.Second)); n != 1 || p.len() != 1 {
		t.Fatalf("expired %d, %d left", n, p.len())
	}
}

// TestCheckTallyFetchesMissingVotes: a validator that missed the votes
// fetches them through sync before deciding.
func TestCheckTallyFetchesMissingVotes(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	nodes, _ := smallNet(t, 3, 1, gov)
	ctx := context.Background()
	late := nodes[2]
	partition(nodes[:2], nodes[2:], true)
	pid, err := nodes[0].svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "proposal", func() bool { _, ok := nodes[1].svc.Proposal(pid, time.Now()); return ok })
	for _, nd := range nodes[:2] {
		if err := nd.svc.PublishVote(ctx, pid, "yes"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "votes", func() bool { return len(nodes[1].svc.VoteIDs(pid)) == 2 })
	ids := nodes[1].svc.VoteIDs(pid)
	if late.svc.OpCount() != 0 {
		t.Fatal("the partition leaked")
	}
	partition(nodes[:2], nodes[2:], false)
	connect(t, late, nodes[1])
	if err := late.svc.CheckTally(ctx, pid, ids); err != nil {
		t.Fatalf("CheckTally: %v", err)
	}
}
