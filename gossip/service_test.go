package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// smallNet starts n connected nodes (a full mesh) with the first nval as
// validators.
func smallNet(t *testing.T, n, nval int, gov genesis.Governance) ([]*tnode, *rulesBox) {
	t.Helper()
	keys := make([]crypto.PrivKey, n)
	for i := range keys {
		keys[i] = newKey(t)
	}
	rb := &rulesBox{}
	rb.set(makeRules(keys, nval, gov))
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = startNode(t, keys[i], memDS(), rb, testConfig())
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	return nodes, rb
}

func TestGovernanceFlow(t *testing.T) {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	nodes, _ := smallNet(t, 4, 3, gov)
	ctx := context.Background()
	events, stop := nodes[3].svc.Subscribe()
	defer stop()

	pid, err := nodes[0].svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "proposal everywhere", func() bool { _, err := n.svc.Proposal(pid, time.Now()); return err == nil })
	}
	if err := nodes[1].svc.PublishVote(ctx, "upgrade_nope", "yes"); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("vote on unknown proposal: %v", err)
	}
	if err := nodes[1].svc.PublishVote(ctx, pid, "maybe"); !errors.Is(err, ErrBadChoice) {
		t.Fatalf("bad choice: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := nodes[i].svc.PublishVote(ctx, pid, "yes"); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[0].svc.PublishVote(ctx, pid, "approval"); !errors.Is(err, ErrAlreadyVoted) {
		t.Fatalf("same vote again: %v", err)
	}
	// 3 of 4 equal weights approve: early approval everywhere.
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "approved everywhere", func() bool {
			a := n.svc.Approved(time.Now())
			return len(a) == 1 && a[0].ID == pid
		})
	}
	voteIDs := nodes[0].svc.VoteIDs(pid)
	if len(voteIDs) != 3 {
		t.Fatalf("vote IDs %v", voteIDs)
	}

	p, _ := nodes[0].svc.Proposal(pid, time.Now())
	e := execlog.Entry{Seq: 1, ProposalID: pid, Version: p.Body.Version, PackageURL: p.Body.PackageURL,
		PackageHash: p.Body.PackageHash, PackageSize: p.Body.PackageSize}
	if err := nodes[3].svc.publishRatify(ctx, e); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("ratify from a non-validator: %v", err)
	}
	if err := nodes[0].svc.publishRatify(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].svc.publishRatify(ctx, e); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := nodes[1].svc.publishRatify(ctx, e); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(nodes[3].svc.ExecutionLog()) != 0 {
		t.Fatal("two of three validators made an entry final (needs more than 2/3)")
	}
	if err := nodes[2].svc.publishRatify(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "entry final everywhere", func() bool { return len(n.svc.ExecutionLog()) == 1 })
		if got := n.svc.ExecutionLog()[0]; got != e {
			t.Fatalf("entry %+v, want %+v", got, e)
		}
		if v, _ := n.svc.Proposal(pid, time.Now()); v.Status != StatusRatified || v.Seq != 1 {
			t.Fatalf("status %s seq %d", v.Status, v.Seq)
		}
		if len(n.svc.Approved(time.Now())) != 0 {
			t.Fatal("a ratified proposal is still listed as approved")
		}
	}
	sawFinal := false
	deadline := time.After(5 * time.Second)
	for !sawFinal {
		select {
		case ev := <-events:
			sawFinal = ev.Kind == EntryFinal && ev.Seq == 1 && ev.ProposalID == pid
		case <-deadline:
			t.Fatal("no EntryFinal event")
		}
	}

	post := "aa00000000000000000000000000000000000000000000000000000000000000"
	for i, n := range nodes {
		r := Report{Seq: 1, EntryHash: e.Hash(), ProposalID: pid, Success: true, Version: e.Version, PostStateSHA256: post}
		if i == 3 {
			r.PostStateSHA256 = "bb" + post[2:]
		}
		if err := n.svc.PublishReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "reports everywhere", func() bool {
			r := n.svc.Reports(1)
			return len(r[post]) == 3 && len(r["bb"+post[2:]]) == 1
		})
	}
	if err := nodes[0].svc.PublishReport(ctx, Report{Seq: 1, EntryHash: "xyz", ProposalID: pid}); !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("bad report: %v", err)
	}
}

func TestNewValidatesConfigAndDeps(t *testing.T) {
	key := newKey(t)
	h, _ := newHost(t, key)
	defer h.Close()
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{key}, 1, genesis.DefaultGovernance()))
	good := Deps{Host: h, Key: key, Datastore: memDS(), NetID: testNet, Rules: rb.get}
	bad := DefaultConfig()
	bad.OrphanMax = 0
	if _, err := New(context.Background(), bad, good); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	for name, d := range map[string]Deps{
		"no host":   {Key: key, Datastore: memDS(), NetID: testNet, Rules: rb.get},
		"other key": {Host: h, Key: newKey(t), Datastore: memDS(), NetID: testNet, Rules: rb.get},
		"no netID":  {Host: h, Key: key, Datastore: memDS(), Rules: rb.get},
		"no rules":  {Host: h, Key: key, Datastore: memDS(), NetID: testNet},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(context.Background(), DefaultConfig(), d); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
	s, err := New(context.Background(), DefaultConfig(), good)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := s.PublishProposal(context.Background(), testBody(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// TestSlowSubscriberNeverBlocks: a subscriber that never reads does not
// hold up publishing; its events are coalesced per proposal.
func TestSlowSubscriberNeverBlocks(t *testing.T) {
	nodes, _ := smallNet(t, 1, 1, genesis.DefaultGovernance())
	svc := nodes[0].svc
	svc.cfg.EventBuffer = 1
	ch, stop := svc.Subscribe()
	defer stop()
	ctx := context.Background()
	pid, err := svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			if err := svc.PublishVote(ctx, pid, []string{"yes", "no"}[i%2]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("publishing blocked on a slow subscriber")
	}
	time.Sleep(100 * time.Millisecond)
	n := 0
	for {
		select {
		case ev := <-ch:
			if ev.Kind != ProposalChanged || ev.ProposalID != pid {
				t.Fatalf("unexpected event %+v", ev)
			}
			n++
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if n == 0 || n > 3 {
		t.Fatalf("%d events for 51 changes of one proposal; want a few coalesced ones", n)
	}
	if v, _ := svc.Proposal(pid, time.Now()); len(v.Votes) != 1 || v.Votes[0].Choice != ChoiceRejection {
		t.Fatalf("votes %+v", v.Votes)
	}
}

// A subscription that names kinds gets only those: a consumer of finality
// does not wake for every vote.
func TestSubscribeKinds(t *testing.T) {
	nodes, _ := smallNet(t, 1, 1, genesis.DefaultGovernance())
	svc := nodes[0].svc
	final, stopFinal := svc.Subscribe(EntryFinal)
	defer stopFinal()
	props, stopProps := svc.Subscribe(ProposalChanged, ReportAdded)
	defer stopProps()
	all, stopAll := svc.Subscribe()
	defer stopAll()
	ctx := context.Background()
	pid, err := svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.PublishVote(ctx, pid, "yes"); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan Event{"kinds [proposal_changed report_added]": props, "every kind": all} {
		select {
		case ev := <-ch:
			if ev.Kind != ProposalChanged || ev.ProposalID != pid {
				t.Fatalf("%s: %+v", name, ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event for a new proposal", name)
		}
	}
	select {
	case ev := <-final:
		t.Fatalf("a subscription to entry_final got %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}
