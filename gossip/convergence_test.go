package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	badger "github.com/ipfs/go-ds-badger"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// TestConvergence: 10 nodes on 127.0.0.1 publish random ops, are split by a
// partition that later heals, one node restarts from its badger datastore
// and one joins late; all end with the same op set and the same views.
func TestConvergence(t *testing.T) {
	const n = 10
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]crypto.PrivKey, n+1)
	for i := range keys {
		keys[i] = newKey(t)
	}
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	rb := &rulesBox{}
	rb.set(makeRules(keys, 3, gov))
	badgerDir := t.TempDir()
	openBadger := func() *badger.Datastore {
		ds, err := badger.NewDatastore(badgerDir, &badger.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	bds := openBadger()
	nodes := make([]*tnode, n)
	for i := range nodes {
		ds := memDS()
		if i == n-1 {
			ds = bds
		}
		nodes[i] = startNode(t, keys[i], ds, rb, testConfig())
	}
	// Ring plus chords.
	link := func(i, j int) { connect(t, nodes[i], nodes[j]) }
	for i := 0; i < n; i++ {
		link(i, (i+1)%n)
		link(i, (i+3)%n)
	}
	ctx := context.Background()
	var pids []string
	publishRandom := func(group []*tnode, count int) {
		for k := 0; k < count; k++ {
			nd := group[rng.IntN(len(group))]
			if len(pids) == 0 || rng.IntN(4) == 0 {
				pid, err := nd.svc.PublishProposal(ctx, testBody(len(pids)))
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, pid)
				continue
			}
			pid := pids[rng.IntN(len(pids))]
			if _, err := nd.svc.Proposal(pid, time.Now()); err != nil {
				continue // not here (partitioned away)
			}
			choice := []string{"yes", "no"}[rng.IntN(2)]
			if err := nd.svc.PublishVote(ctx, pid, choice); err != nil && !errors.Is(err, ErrAlreadyVoted) {
				t.Fatal(err)
			}
		}
	}
	publishRandom(nodes, 20)
	waitConverged(t, nodes, "before the partition")

	a, b := nodes[:5], nodes[5:]
	p2ptest.Partition(members(a), members(b))
	publishRandom(a, 15)
	publishRandom(b[:4], 15)
	// Ratify an entry on side a (validators 0..2 are there).
	p, _ := nodes[0].svc.Proposal(pids[0], time.Now())
	e := execlog.Entry{Seq: 1, ProposalID: pids[0], Version: p.Body.Version, PackageURL: p.Body.PackageURL,
		PackageHash: p.Body.PackageHash, PackageSize: p.Body.PackageSize}
	for _, v := range nodes[:3] {
		if err := v.svc.publishRatify(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, b, "side b")
	testutil.WaitFor(t, 10*time.Second, "entry final on side a", func() bool { return len(nodes[4].svc.ExecutionLog()) == 1 })
	for i, nd := range a {
		r := Report{Seq: 1, EntryHash: e.Hash(), ProposalID: e.ProposalID, Success: i != 4, Version: e.Version}
		if r.Success {
			r.PostStateSHA256 = fmt.Sprintf("%064x", 0xabc)
		} else {
			r.ErrorClass = "trap"
		}
		if err := nd.svc.PublishReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(nodes[5].svc.ExecutionLog()) != 0 || slices.Equal(nodes[0].svc.opIDs(), nodes[5].svc.opIDs()) {
		t.Fatal("the partition leaked ops")
	}
	// Restart node 9 from its datastore while partitioned.
	before := nodes[n-1].svc.opIDs()
	nodes[n-1].stop()
	if err := bds.Close(); err != nil {
		t.Fatal(err)
	}
	bds = openBadger()
	t.Cleanup(func() { bds.Close() })
	nodes[n-1] = startNode(t, keys[n-1], bds, rb, testConfig())
	if got := nodes[n-1].svc.opIDs(); !slices.Equal(got, before) {
		t.Fatalf("restart lost ops: %d before, %d after", len(before), len(got))
	}
	p2ptest.Heal(members(a), members(b))
	for i := 0; i < n; i++ {
		link(i, (i+1)%n)
		link(i, (i+3)%n)
	}
	late := startNode(t, keys[n], memDS(), rb, testConfig())
	connect(t, late, nodes[0])
	all := append(append([]*tnode(nil), nodes...), late)
	waitConverged(t, all, "after healing")
	if len(late.svc.ExecutionLog()) != 1 {
		t.Fatal("late node has no final entry")
	}
	if r := late.svc.Reports(1); len(r[fmt.Sprintf("%064x", 0xabc)]) != 4 || len(r[""]) != 1 {
		t.Fatalf("late node's reports %v", r)
	}
}

// waitConverged waits until every node has node 0's op set and views.
func waitConverged(t *testing.T, nodes []*tnode, when string) {
	t.Helper()
	now := time.Now()
	testutil.WaitFor(t, 60*time.Second, "convergence "+when, func() bool {
		want := nodes[0].svc.opIDs()
		for _, nd := range nodes[1:] {
			if !slices.Equal(nd.svc.opIDs(), want) {
				return false
			}
		}
		return true
	})
	want := viewDigest(nodes[0].svc, now)
	for _, nd := range nodes[1:] {
		if got := viewDigest(nd.svc, now); got != want {
			t.Fatalf("views differ %s:\n%s\n%s", when, want, got)
		}
	}
}

// TestDuplicatedReorderedDelivery feeds one node's ops to a fresh node in
// reverse order, each twice: votes wait as orphans for their proposals and
// the result equals the source's views.
func TestDuplicatedReorderedDelivery(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	nodes, rb := smallNet(t, 3, 2, gov)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		pid, err := nodes[i].svc.PublishProposal(ctx, testBody(i))
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the proposal on every node", func() bool {
			for _, nd := range nodes { // each votes next
				if _, err := nd.svc.Proposal(pid, time.Now()); err != nil {
					return false
				}
			}
			return true
		})
		for j, nd := range nodes {
			if err := nd.svc.PublishVote(ctx, pid, []string{"yes", "no"}[(i+j)%2]); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitConverged(t, nodes, "source")
	ops := nodes[0].svc.rawOps()
	slices.Reverse(ops)
	fresh := startNode(t, newKey(t), memDS(), rb, testConfig())
	for _, raw := range ops {
		for k := 0; k < 2; k++ {
			err := fresh.svc.Ingest(raw)
			if err != nil && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrMissingDeps) {
				t.Fatal(err)
			}
		}
	}
	if fresh.svc.orphans.len() != 0 {
		t.Fatalf("%d orphans left", fresh.svc.orphans.len())
	}
	now := time.Now()
	if got, want := viewDigest(fresh.svc, now), viewDigest(nodes[0].svc, now); got != want {
		t.Fatalf("views differ:\n%s\n%s", want, got)
	}
}
