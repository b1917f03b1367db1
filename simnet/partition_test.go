package simnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// A member cut off by a network partition misses a whole upgrade —
// proposal, votes, ratification, the entry — while the others carry it
// out; once the partition heals it catches up by sync and reaches the
// same state hash. Nothing crosses the partition while it lasts.
func TestPartitionedNodeCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	nw := startNet(t, 5, 3) // validators 0..2; node 4 is the one cut off
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := nw.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nw.Partition([]int{0, 1, 2, 3}, []int{4}); err != nil {
		t.Fatal(err)
	}
	cut := nw.Nodes[4]
	testutil.WaitFor(t, 10*time.Second, "node 4 without connections to the others", func() bool {
		for _, nd := range nw.Nodes[:4] {
			if cut.Host().Network().Connectedness(nd.ID()) == network.Connected {
				return false
			}
		}
		return true
	})

	req := packageReq(t, nw, "add-feature-flag-rs", "1.2.0")
	gov, _, _ := nw.Nodes[0].APIBackends()
	p, err := gov.Propose(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for j, nd := range nw.Nodes[:4] {
		g, _, _ := nd.APIBackends()
		testutil.WaitFor(t, 30*time.Second, "proposal visible", func() bool { _, err := g.Proposal(ctx, p.ProposalID); return err == nil })
		if _, err := g.Vote(ctx, p.ProposalID, "approval"); err != nil {
			t.Fatalf("node %d votes: %v", j, err)
		}
	}
	testutil.WaitFor(t, 90*time.Second, "the majority side executed the upgrade", func() bool {
		for _, nd := range nw.Nodes[:4] {
			if nd.Upgrades().LastExecutedSeq() < 1 {
				return false
			}
		}
		return true
	})
	cg, _, _ := cut.APIBackends()
	if _, err := cg.Proposal(ctx, p.ProposalID); err == nil {
		t.Fatal("the proposal crossed the partition")
	}
	if cut.Upgrades().LastExecutedSeq() != 0 {
		t.Fatal("the cut-off node executed an entry it cannot have")
	}

	nw.Heal(ctx)
	waitExecuted(t, nw, 1)
	_, _, want := nw.Nodes[0].Upgrades().State()
	for i, nd := range nw.Nodes {
		if v, _, sum := nd.Upgrades().State(); v != "1.2.0" || sum != want {
			t.Fatalf("node %d: version %s, state %s; want 1.2.0, %s", i, v, sum, want)
		}
	}
}
