package simnet_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// The dashboard shows ratification progress before an entry is final: the
// API's view of an approved proposal carries the entry it would be at the
// next seq and the validators that attested exactly that entry. With 3
// validators (all must sign) and one of them down, the other two attest
// and nobody can sign, so the progress stays visible; once the third is
// back the entry becomes final and the view says so.
func TestRatificationProgressBeforeFinality(t *testing.T) {
	net := startNetWith(t, simnet.Config{Nodes: 4, Validators: 3, Tune: func(i int, c *node.Config) {
		c.Raft.StallTimeout = 10 * time.Minute // no void while we look
		c.Raft.LeaderGrace = 10 * time.Minute
	}})
	ctx := context.Background()
	// Proposed while all are up (more paths for the gossip), then a
	// validator stops before anyone votes.
	id := proposeOn(t, net, 0, "Progress", "1.0.1", addPackage(t, net.Nodes[0], tinyModule("progress")))
	if err := net.StopNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3} {
		gov, _, _ := net.Nodes[i].APIBackends()
		if _, err := gov.Vote(ctx, id, "approval"); err != nil {
			t.Fatalf("vote on node %d: %v", i, err)
		}
	}
	gov, _, _ := net.Nodes[0].APIBackends()
	up := []string{net.Nodes[0].ID().String(), net.Nodes[1].ID().String()}
	slices.Sort(up)
	var p httpapi.Proposal
	testutil.WaitFor(t, 60*time.Second, "both running validators attest the entry", func() bool {
		var err error
		p, err = gov.Proposal(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		r := p.Ratification
		return r != nil && slices.Equal(r.Attesters, up)
	})
	r := p.Ratification
	if p.Status != "approved" || r.Final || r.Seq != 1 || r.Signatures != 0 || r.Required != 3 || len(r.EntryHash) != 64 {
		t.Fatalf("progress before finality: status %s, ratification %+v", p.Status, *r)
	}
	if lg, _ := gov.ExecutionLog(ctx); len(lg) != 0 {
		t.Fatalf("entry final without the third validator: %+v", lg)
	}

	if err := net.RestartNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 90*time.Second, "the entry becomes final", func() bool {
		p, _ = gov.Proposal(ctx, id)
		return p.Ratification != nil && p.Ratification.Final
	})
	if f := p.Ratification; f.EntryHash != r.EntryHash || f.Signatures < 3 || len(f.Signers) != f.Signatures || len(f.Attesters) != 0 {
		t.Fatalf("final ratification %+v, candidate was %+v", *f, *r)
	}
}
