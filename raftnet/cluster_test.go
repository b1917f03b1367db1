package raftnet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// govNet is the approved-proposal view every test node shares (as if the
// op set were fully replicated).
type govNet struct {
	mu    sync.Mutex
	cands []Candidate
}

func (g *govNet) add(ids ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.cands = append(g.cands, Candidate{
			ProposalID: id, Version: "1.2.0", PackageURL: "ipfs://bafk" + id,
			PackageHash: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
			PackageSize: 100, VoteIDs: []string{id + "-v2", id + "-v1"},
			Approval: 2, Rejection: 0, Eligible: 3,
		})
	}
}

// fakeGov is one node's in-memory Governance: Approved from the shared
// govNet, CheckTally checks the command against it, PublishRatify records.
type fakeGov struct {
	net     *govNet
	changed chan struct{}

	mu        sync.Mutex
	published []Entry
	failFirst int // CheckTally fails this many times first
	checks    int
}

func newFakeGov(n *govNet) *fakeGov { return &fakeGov{net: n, changed: make(chan struct{}, 1)} }

func (g *fakeGov) Approved(time.Time) []Candidate {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	return slices.Clone(g.net.cands)
}

func (g *fakeGov) CheckTally(_ context.Context, c Candidate) error {
	g.mu.Lock()
	g.checks++
	fail := g.checks <= g.failFirst
	g.mu.Unlock()
	if fail {
		return fmt.Errorf("votes not synced yet")
	}
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	for _, k := range g.net.cands {
		if k.ProposalID == c.ProposalID {
			if k.Approval != c.Approval || !slices.Equal(sortedStrings(k.VoteIDs), c.VoteIDs) {
				return fmt.Errorf("tally mismatch for %s", c.ProposalID)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown proposal %s", c.ProposalID)
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func (g *fakeGov) PublishRatify(_ context.Context, e Entry) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.published = append(g.published, e)
	return nil
}

func (g *fakeGov) setFailFirst(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failFirst = n
}

func (g *fakeGov) Changed() <-chan struct{} { return g.changed }

func (g *fakeGov) nudge() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *fakeGov) publishedEntries() []Entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.published)
}

type tnode struct {
	h   *p2p.Host
	gov *fakeGov
	dir string
	svc *Service
}

type cluster struct {
	t      *testing.T
	mutate func(*Config) // adjusts every node's config (may be nil)
	net    *govNet
	nodes  []*tnode
	vals   atomic.Pointer[[]peer.ID]
	boot   []peer.ID
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dir = dir
	c.NetworkID = p2ptest.NetID
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 3 * time.Second
	c.PollInterval = 200 * time.Millisecond
	c.RetryMin = 20 * time.Millisecond
	c.RetryMax = 200 * time.Millisecond
	return c
}

// testLogger routes logs to t.Log until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	var live atomic.Bool
	live.Store(true)
	t.Cleanup(func() { live.Store(false) })
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if live.Load() && testing.Verbose() {
			t.Log(string(p))
		}
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// newCluster starts total hosts, fully connected; the first nVal are the
// (genesis) validators. Every node runs a Service.
func newCluster(t *testing.T, nVal, total int) *cluster {
	t.Helper()
	c := &cluster{t: t, net: &govNet{}}
	logger := testLogger(t)
	for i := 0; i < total; i++ {
		c.nodes = append(c.nodes, &tnode{h: p2ptest.NewHost(t, nil), gov: newFakeGov(c.net), dir: t.TempDir()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range c.nodes {
		for _, b := range c.nodes[i+1:] {
			if err := a.h.Connect(ctx, b.h.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	var vals []peer.ID
	for _, n := range c.nodes[:nVal] {
		vals = append(vals, n.h.ID())
	}
	c.boot = vals
	c.setValidators(vals)
	for i := range c.nodes {
		c.start(i, logger.With("node", i))
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.svc.Close()
		}
	})
	return c
}

func (c *cluster) setValidators(v []peer.ID) { v = slices.Clone(v); c.vals.Store(&v) }

func (c *cluster) start(i int, logger *slog.Logger) {
	c.t.Helper()
	n := c.nodes[i]
	cfg := testConfig(n.dir)
	if c.mutate != nil {
		c.mutate(&cfg)
	}
	svc, err := New(context.Background(), cfg, Deps{
		Host: n.h.Host, Governance: n.gov,
		Validators:        func() []peer.ID { return slices.Clone(*c.vals.Load()) },
		GenesisValidators: c.boot,
		Logger:            logger,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	n.svc = svc
}

func (c *cluster) propose(ids ...string) {
	c.net.add(ids...)
	for _, n := range c.nodes {
		n.gov.nudge()
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits for exactly one leader among the given nodes.
func (c *cluster) leader(idx []int) int {
	c.t.Helper()
	l := -1
	waitFor(c.t, 20*time.Second, "a single leader", func() bool {
		l = -1
		for _, i := range idx {
			if c.nodes[i].svc.IsLeader() {
				if l >= 0 {
					return false
				}
				l = i
			}
		}
		return l >= 0
	})
	return l
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ProposalID)
	}
	return out
}

// checkLog asserts es is a well-formed log of exactly the given proposals.
func checkLog(t *testing.T, who string, es []Entry, want ...string) {
	t.Helper()
	got := ids(es)
	if !slices.Equal(sortedStrings(got), sortedStrings(want)) {
		t.Fatalf("%s: log %v, want proposals %v", who, got, want)
	}
	prev := ""
	for i, e := range es {
		if e.Seq != uint64(i+1) || e.PrevEntryHash != prev {
			t.Fatalf("%s: entry %d (%+v) breaks the chain", who, i, e)
		}
		prev = e.Hash()
	}
}

func (c *cluster) waitEntries(idx []int, n int, d time.Duration) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("%d entries on nodes %v", n, idx), func() bool {
		for _, i := range idx {
			if len(c.nodes[i].svc.Entries()) < n {
				return false
			}
		}
		return true
	})
}

func (c *cluster) sameLogs(idx []int, want ...string) {
	c.t.Helper()
	ref := c.nodes[idx[0]].svc.Entries()
	for _, i := range idx {
		es := c.nodes[i].svc.Entries()
		checkLog(c.t, fmt.Sprintf("node %d", i), es, want...)
		if !slices.Equal(es, ref) {
			c.t.Fatalf("node %d log %v differs from node %d log %v", i, es, idx[0], ref)
		}
	}
}

func span(a, b int) []int {
	var out []int
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

func TestRatifyThreeValidators(t *testing.T) {
	c := newCluster(t, 3, 4) // node 3 is not a validator
	vals := span(0, 3)
	c.leader(vals)
	events, stop := c.nodes[1].svc.Events()
	defer stop()
	c.nodes[2].gov.setFailFirst(2) // its tally check fails twice: retried, not skipped

	c.propose("p1")
	c.waitEntries(vals, 1, 20*time.Second)
	c.sameLogs(vals, "p1")
	waitFor(t, 10*time.Second, "ratify published on every validator", func() bool {
		for _, i := range vals {
			if len(c.nodes[i].gov.publishedEntries()) != 1 {
				return false
			}
		}
		return true
	})
	want := c.nodes[0].svc.Entries()[0]
	for _, i := range vals {
		if got := c.nodes[i].gov.publishedEntries(); got[0] != want {
			t.Errorf("node %d published %+v, want %+v", i, got[0], want)
		}
	}
	seen := map[EventKind]bool{}
	waitFor(t, 5*time.Second, "entry and published events", func() bool {
		for {
			select {
			case e := <-events:
				seen[e.Kind] = true
			default:
				return seen[EventEntry] && seen[EventPublished]
			}
		}
	})

	// The non-validator runs no raft and publishes nothing.
	nv := c.nodes[3]
	if nv.svc.IsLeader() || nv.svc.Leader() != "" || len(nv.svc.Entries()) != 0 || len(nv.gov.publishedEntries()) != 0 {
		t.Error("non-validator takes part in raft")
	}
	if got := c.nodes[0].svc.Validators(); len(got) != 3 {
		t.Errorf("Validators() = %v", got)
	}
	leaderID := c.nodes[c.leader(vals)].h.ID()
	for _, i := range vals {
		if got := c.nodes[i].svc.Leader(); got != leaderID {
			t.Errorf("node %d sees leader %s, want %s", i, got, leaderID)
		}
	}
}
