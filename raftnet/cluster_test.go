package raftnet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/internal/partition"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// govNet is the governance every test node shares (as if the op set were
// fully replicated): approved candidates, and each validator's signature
// per seq. An entry is final once more than 2/3 of the validators signed
// the same slot.
type govNet struct {
	mu         sync.Mutex
	cands      []Candidate
	sigs       map[uint64]map[peer.ID]Slot
	unsignable map[string]bool // proposals no validator signs
	vals       func() []peer.ID
}

func (g *govNet) add(ids ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.cands = append(g.cands, Candidate{
			ProposalID: pid(id), Version: "1.2.0", PackageURL: "ipfs://bafk" + id,
			PackageHash: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
			PackageSize: 100, VoteIDs: []string{id + "-v2", id + "-v1"},
			Approval: 2, Rejection: 0, Eligible: 3,
		})
	}
}

// pid makes a canonical proposal ID from a test name (names of up to 16
// bytes can be read back with name).
func pid(name string) string {
	if len(name) > 16 {
		return "upgrade_20260101_120000_" + fmt.Sprintf("%x", sha256.Sum256([]byte(name)))[:32]
	}
	h := fmt.Sprintf("%x", name)
	for len(h) < 32 {
		h += "0"
	}
	return "upgrade_20260101_120000_" + h[:32]
}

// name is the test name of a canonical proposal ID made by pid.
func name(id string) string {
	if len(id) < 32 {
		return id
	}
	var b []byte
	h := strings.TrimRight(id[len(id)-32:], "0")
	if len(h)%2 == 1 {
		h += "0"
	}
	for i := 0; i+1 < len(h); i += 2 {
		var c byte
		fmt.Sscanf(h[i:i+2], "%02x", &c)
		b = append(b, c)
	}
	return string(b)
}

func (g *govNet) needed() int { return len(g.vals())*2/3 + 1 }

// finalLocked returns the slot more than 2/3 of the validators signed at seq.
func (g *govNet) finalLocked(seq uint64) (Slot, bool) {
	count := map[Slot]int{}
	for _, sl := range g.sigs[seq] {
		count[sl]++
	}
	for sl, n := range count {
		if n >= g.needed() {
			sl.Seq = seq
			return sl, true
		}
	}
	return Slot{}, false
}

func (g *govNet) nextLocked() uint64 {
	seq := uint64(1)
	for {
		if _, ok := g.finalLocked(seq); !ok {
			return seq
		}
		seq++
	}
}

// fakeGov is one node's Governance over the shared govNet: it signs the
// slot its FSM holds once per seq (after failFirst refusals), never a
// proposal marked unsignable.
type fakeGov struct {
	net     *govNet
	self    peer.ID
	changed chan struct{}

	mu        sync.Mutex
	signed    []Slot
	failFirst int // Endorse waits this many times first
	checks    int
	// A dishonest leader's view: it claims a quorum exists (so it never
	// voids) or hides every approved proposal (so it never orders).
	lieQuorum, censor bool
}

func newFakeGov(n *govNet) *fakeGov { return &fakeGov{net: n, changed: make(chan struct{}, 1)} }

func (g *fakeGov) Approved(time.Time) []Candidate {
	g.mu.Lock()
	censor := g.censor
	g.mu.Unlock()
	if censor {
		return nil
	}
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	var out []Candidate
	for _, c := range g.net.cands {
		final := false
		for seq := uint64(1); seq < g.net.nextLocked(); seq++ {
			if sl, _ := g.net.finalLocked(seq); sl.ProposalID == c.ProposalID {
				final = true
			}
		}
		if !final {
			out = append(out, c)
		}
	}
	return out
}

func (g *fakeGov) NextSeq() uint64 {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	return g.net.nextLocked()
}

func (g *fakeGov) Final(seq uint64) (Slot, bool) {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	return g.net.finalLocked(seq)
}

func (g *fakeGov) Endorse(_ context.Context, seq uint64, slot *Slot) (Progress, error) {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	if _, ok := g.net.finalLocked(seq); ok {
		return Progress{Final: true}, nil
	}
	var p Progress
	if slot == nil {
		p.Waiting = "no slot"
		return p, nil
	}
	sl := *slot
	sl.Seq = 0
	if g.net.unsignable[sl.ProposalID] {
		p.Unsignable = "marked unsignable"
		g.mu.Lock()
		if g.lieQuorum {
			p.Quorum = "a quorum I made up"
		}
		g.mu.Unlock()
		return p, nil
	}
	g.mu.Lock()
	g.checks++
	wait := g.checks <= g.failFirst
	g.mu.Unlock()
	if wait {
		p.Waiting = "failing first"
		return p, nil
	}
	if g.net.sigs == nil {
		g.net.sigs = map[uint64]map[peer.ID]Slot{}
	}
	if g.net.sigs[seq] == nil {
		g.net.sigs[seq] = map[peer.ID]Slot{}
	}
	if prev, ok := g.net.sigs[seq][g.self]; ok {
		p.Ratified = fmt.Sprint(prev)
		return p, nil // never a second signature at one seq
	}
	g.net.sigs[seq][g.self] = sl
	g.mu.Lock()
	g.signed = append(g.signed, Slot{Seq: seq, Void: sl.Void, ProposalID: sl.ProposalID, Version: sl.Version,
		PackageURL: sl.PackageURL, PackageHash: sl.PackageHash, PackageSize: sl.PackageSize})
	g.mu.Unlock()
	p.Attested, p.Ratified = true, fmt.Sprint(sl)
	_, p.Final = g.net.finalLocked(seq)
	if p.Final {
		p.Quorum = p.Ratified
	}
	return p, nil
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

func (g *fakeGov) signedSlots() []Slot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.signed)
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

type tnode struct {
	h    *p2p.Host
	gate *partition.Gater // cuts the node off in partition tests
	gov  *fakeGov
	dir  string
	svc  *Service
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
	return newClusterWith(t, &cluster{t: t}, nVal, total)
}

// newClusterWith is newCluster for a cluster with options (mutate) set.
func newClusterWith(t *testing.T, c *cluster, nVal, total int) *cluster {
	t.Helper()
	c.net = &govNet{}
	c.net.vals = func() []peer.ID { return slices.Clone(*c.vals.Load()) }
	logger := testLogger(t)
	for i := 0; i < total; i++ {
		gate := partition.NewGater()
		h := p2ptest.NewHost(t, nil, p2p.WithLibp2pOptions(libp2p.ConnectionGater(gate)))
		c.nodes = append(c.nodes, &tnode{h: h, gate: gate, gov: newFakeGov(c.net), dir: t.TempDir()})
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
			n.svc.Close(context.Background())
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
	n.gov.self = n.h.ID()
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

// leader waits for exactly one leader among the given nodes.
func (c *cluster) leader(idx []int) int {
	c.t.Helper()
	l := -1
	testutil.WaitFor(c.t, 20*time.Second, "a single leader", func() bool {
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

func ids(es []Slot) []string {
	var out []string
	for _, e := range es {
		out = append(out, name(e.ProposalID))
	}
	return out
}

// checkLog asserts es is a dense slot list of exactly the given proposals.
func checkLog(t *testing.T, who string, es []Slot, want ...string) {
	t.Helper()
	got := ids(es)
	if !slices.Equal(sortedStrings(got), sortedStrings(want)) {
		t.Fatalf("%s: slots %v, want proposals %v", who, got, want)
	}
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("%s: slot %d (%+v) has seq %d", who, i, e, e.Seq)
		}
	}
}

func (c *cluster) waitEntries(idx []int, n int, d time.Duration) {
	c.t.Helper()
	testutil.WaitFor(c.t, d, fmt.Sprintf("%d slots on nodes %v", n, idx), func() bool {
		for _, i := range idx {
			if len(c.nodes[i].svc.Slots()) < n {
				return false
			}
		}
		return true
	})
}

// waitFinal waits until n entries are final in the shared governance.
func (c *cluster) waitFinal(n int, d time.Duration) {
	c.t.Helper()
	testutil.WaitFor(c.t, d, fmt.Sprintf("%d final entries", n), func() bool {
		return c.nodes[0].gov.NextSeq() > uint64(n)
	})
}

func (c *cluster) sameLogs(idx []int, want ...string) {
	c.t.Helper()
	ref := c.nodes[idx[0]].svc.Slots()
	for _, i := range idx {
		es := c.nodes[i].svc.Slots()
		checkLog(c.t, fmt.Sprintf("node %d", i), es, want...)
		if !slices.Equal(es, ref) {
			c.t.Fatalf("node %d slots %v differ from node %d slots %v", i, es, idx[0], ref)
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
	c.nodes[2].gov.setFailFirst(2) // its check waits twice: retried, not skipped

	c.propose("p1")
	c.waitEntries(vals, 1, 20*time.Second)
	c.sameLogs(vals, "p1")
	c.waitFinal(1, 10*time.Second)
	testutil.WaitFor(t, 10*time.Second, "every validator signed", func() bool {
		for _, i := range vals {
			if len(c.nodes[i].gov.signedSlots()) != 1 {
				return false
			}
		}
		return true
	})
	want := c.nodes[0].svc.Slots()[0]
	for _, i := range vals {
		if got := c.nodes[i].gov.signedSlots(); got[0] != want {
			t.Errorf("node %d signed %+v, want %+v", i, got[0], want)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "ratified event", func() bool {
		for {
			select {
			case e := <-events:
				if e.Kind == EventRatified && e.Seq == 1 {
					return true
				}
			default:
				return false
			}
		}
	})

	// The non-validator runs no raft and signs nothing.
	nv := c.nodes[3]
	if nv.svc.IsLeader() || nv.svc.Leader() != "" || len(nv.svc.Slots()) != 0 || len(nv.gov.signedSlots()) != 0 {
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
