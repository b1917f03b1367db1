package raftnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/internal/partition"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

func without(idx []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return slices.Contains(drop, i) })
}

// waitPublishedOnce waits until n entries are final and checks that each
// of the nodes signed at most once per seq, and only the slot its own FSM
// holds there (a node may skip a seq that became final without it).
func (c *cluster) waitPublishedOnce(idx []int, n int) {
	c.t.Helper()
	c.waitFinal(n, 20*time.Second)
	for _, i := range idx {
		slots := c.nodes[i].svc.Slots()
		seen := map[uint64]bool{}
		for _, sl := range c.nodes[i].gov.signedSlots() {
			if seen[sl.Seq] {
				c.t.Fatalf("node %d signed seq %d twice", i, sl.Seq)
			}
			seen[sl.Seq] = true
			if sl.Seq == 0 || sl.Seq > uint64(len(slots)) || !slots[sl.Seq-1].same(sl) {
				c.t.Fatalf("node %d signed %+v, its slots are %v", i, sl, slots)
			}
		}
	}
}

func TestLeaderKilledMidRatification(t *testing.T) {
	c := newCluster(t, 5, 5)
	all := span(0, 5)
	l := c.leader(all)
	c.propose("p1")
	c.waitEntries(all, 1, 20*time.Second)

	// Two more approvals; kill the leader as soon as it has committed the
	// first of them, before it gets to the second.
	c.propose("p2", "p3")
	testutil.WaitFor(t, 20*time.Second, "leader commits p2", func() bool { return len(c.nodes[l].svc.Slots()) >= 2 })
	if err := c.nodes[l].svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rest := without(all, l)
	nl := c.leader(rest)
	if nl == l {
		t.Fatal("closed node still leads")
	}
	c.waitEntries(rest, 3, 20*time.Second)
	c.sameLogs(rest, "p1", "p2", "p3")
	c.waitPublishedOnce(rest, 3)
	// A nudge later changes nothing: no duplicate entry for p1..p3.
	c.propose()
	time.Sleep(3 * testConfig("").PollInterval)
	c.sameLogs(rest, "p1", "p2", "p3")
}

// partition cuts the connections between the groups a and b (both ways).
func (c *cluster) partition(a, b []int) {
	partition.Cut(c.members(a), c.members(b))
}

// heal ends every partition; raft redials on its own.
func (c *cluster) heal() {
	for _, n := range c.nodes {
		n.gate.UnblockAll()
	}
}

func (c *cluster) members(idx []int) []partition.Member {
	var out []partition.Member
	for _, i := range idx {
		out = append(out, partition.Member{Host: c.nodes[i].h.Host, Gater: c.nodes[i].gate})
	}
	return out
}

func TestMinorityPartitionCannotCommit(t *testing.T) {
	c := newCluster(t, 5, 5)
	all := span(0, 5)
	l := c.leader(all)
	other := (l + 1) % 5
	minority := []int{l, other}
	majority := without(all, minority...)
	c.partition(minority, majority)

	// The minority's leader cannot commit, even when asked directly.
	if n := c.nodes[l].svc.current(); n != nil {
		if _, err := c.nodes[l].svc.applyCommand(n, command{Kind: kindRatify, Ratify: ptr(testRatify("minority"))}); err == nil {
			t.Fatal("minority leader committed a command")
		}
	}
	c.propose("p1")
	nl := c.leader(majority)
	c.waitEntries(majority, 1, 20*time.Second)
	c.sameLogs(majority, "p1")
	_ = nl
	for _, i := range minority {
		if es := c.nodes[i].svc.Slots(); len(es) != 0 {
			t.Fatalf("minority node %d committed %v", i, ids(es))
		}
		if len(c.nodes[i].gov.signedSlots()) != 0 {
			t.Fatalf("minority node %d published a ratify op", i)
		}
	}

	c.heal()
	c.waitEntries(all, 1, 30*time.Second)
	c.propose("p2")
	c.waitEntries(all, 2, 20*time.Second)
	c.sameLogs(all, "p1", "p2")
	c.waitPublishedOnce(all, 2)
}

func TestRestartAllFromDisk(t *testing.T) {
	c := newCluster(t, 3, 3)
	all := span(0, 3)
	c.leader(all)
	c.propose("p1", "p2")
	c.waitEntries(all, 2, 20*time.Second)
	c.waitPublishedOnce(all, 2)
	// From now on snapshot after every entry and keep no trailing log, so
	// the restart below restores the FSM from a snapshot (plus the WAL).
	c.mutate = func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs = 1, 20*time.Millisecond, 0
	}
	for _, n := range c.nodes {
		if err := n.svc.current().raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		if snaps, _ := os.ReadDir(filepath.Join(n.dir, "snapshots")); len(snaps) == 0 {
			t.Fatal("no snapshot in <Dir>/snapshots")
		}
	}
	before := c.nodes[0].svc.Slots()
	var terms []uint64
	for _, n := range c.nodes {
		term, _ := strconv.ParseUint(n.svc.current().raft.Stats()["term"], 10, 64)
		terms = append(terms, term)
		if err := n.svc.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.nodes {
		c.start(i, testLogger(t))
	}
	c.waitEntries(all, 2, 20*time.Second)
	for i, n := range c.nodes {
		if got := n.svc.Slots(); !slices.Equal(got, before) {
			t.Fatalf("node %d after restart: %v, want %v", i, got, before)
		}
		term, _ := strconv.ParseUint(n.svc.current().raft.Stats()["term"], 10, 64)
		if term < terms[i] {
			t.Errorf("node %d term went back from %d to %d", i, terms[i], term)
		}
		if si := n.svc.current().raft.Stats()["last_snapshot_index"]; si == "0" {
			t.Errorf("node %d did not restore from its snapshot", i)
		}
	}
	c.propose("p3")
	c.waitEntries(all, 3, 20*time.Second)
	c.sameLogs(all, "p1", "p2", "p3")
	// Published before the restart means not published again.
	c.waitPublishedOnce(all, 3)
}

func TestNonValidatorCannotInject(t *testing.T) {
	c := newCluster(t, 3, 4) // node 3 is not a validator
	vals := span(0, 3)
	l := c.leader(vals)
	out := c.nodes[3]
	target := c.nodes[l].h.ID()

	// A raw stream on the raft protocol is reset before raft reads it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := out.h.NewStream(ctx, target, ProtocolID(p2ptestNetID()))
	if err == nil {
		st.SetDeadline(time.Now().Add(5 * time.Second))
		w := bufio.NewWriter(st)
		w.WriteString("garbage")
		w.Flush()
		if _, err = io.ReadAll(st); err == nil {
			t.Fatal("raft stream from a non-validator was served")
		}
	}

	// A full raft AppendEntries carrying a Ratify, from a raft transport on
	// the non-validator, is refused too.
	layer := newStreamLayer(out.h.Host, ProtocolID(p2ptestNetID()), nil, nil)
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 1, Timeout: 2 * time.Second,
		Logger: hclog.NewNullLogger(),
	})
	defer trans.Close()
	data, _ := encodeRatify(testRatify("injected"))
	var resp raft.AppendEntriesResponse
	req := raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(out.h.ID().String()), Addr: []byte(out.h.ID().String())},
		Term:      1 << 40, PrevLogEntry: 0, LeaderCommitIndex: 1 << 20,
		Entries: []*raft.Log{{Index: 1 << 20, Term: 1 << 40, Type: raft.LogCommand, Data: data}},
	}
	for _, v := range vals {
		id := c.nodes[v].h.ID().String()
		err := trans.AppendEntries(raft.ServerID(id), raft.ServerAddress(id), &req, &resp)
		if err == nil {
			t.Fatalf("validator %d accepted AppendEntries from a non-validator", v)
		}
	}
	// And the cluster is undisturbed: same leader can still commit.
	c.propose("p1")
	c.waitEntries(vals, 1, 20*time.Second)
	c.sameLogs(vals, "p1")
	for _, i := range vals {
		for _, e := range c.nodes[i].svc.Slots() {
			if e.ProposalID == "injected" {
				t.Fatal("injected command reached the log")
			}
		}
	}
}

func p2ptestNetID() string { return testConfig("").NetworkID }

func TestMembershipFollowsValidatorSet(t *testing.T) {
	c := newCluster(t, 3, 4)
	vals := span(0, 3)
	l := c.leader(vals)
	c.propose("p1")
	c.waitEntries(vals, 1, 20*time.Second)
	if c.nodes[3].svc.current() != nil {
		t.Fatal("non-validator runs raft")
	}

	// Node 3 becomes a validator: it starts raft, the leader adds it, it
	// catches up and publishes.
	var ids4 []peer.ID
	for _, n := range c.nodes {
		ids4 = append(ids4, n.h.ID())
	}
	c.setValidators(ids4)
	for _, n := range c.nodes {
		n.svc.ReconcileMembership()
	}
	c.waitEntries([]int{3}, 1, 20*time.Second)
	c.waitPublishedOnce([]int{3}, 1)

	// The leader is removed: it hands over and stops raft; the rest go on.
	var rest []peer.ID
	for i, n := range c.nodes {
		if i != l {
			rest = append(rest, n.h.ID())
		}
	}
	c.setValidators(rest)
	for _, n := range c.nodes {
		n.svc.ReconcileMembership()
	}
	testutil.WaitFor(t, 20*time.Second, "removed leader stops raft", func() bool { return c.nodes[l].svc.current() == nil })
	remaining := without(span(0, 4), l)
	c.leader(remaining)
	testutil.WaitFor(t, 20*time.Second, "configuration without the removed leader", func() bool {
		for _, i := range remaining {
			n := c.nodes[i].svc.current()
			if n == nil {
				return false
			}
			f := n.raft.GetConfiguration()
			if f.Error() != nil || len(f.Configuration().Servers) != 3 {
				return false
			}
		}
		return true
	})
	c.propose("p2")
	c.waitEntries(remaining, 2, 20*time.Second)
	c.sameLogs(remaining, "p1", "p2")
	if es := c.nodes[l].svc.Slots(); len(es) != 1 {
		t.Errorf("removed validator log = %v", ids(es))
	}
	if c.nodes[l].svc.IsLeader() {
		t.Error("removed validator still leads")
	}
}

func TestNewValidatesDeps(t *testing.T) {
	cfg := testConfig(t.TempDir())
	c := newCluster(t, 1, 1)
	h := c.nodes[0].h.Host
	vals := func() []peer.ID { return []peer.ID{h.ID()} }
	g := newFakeGov(&govNet{})
	for name, d := range map[string]Deps{
		"no host":       {Governance: g, Validators: vals},
		"no governance": {Host: h, Validators: vals},
		"no validators": {Host: h, Governance: g},
		"empty set":     {Host: h, Governance: g, Validators: func() []peer.ID { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(context.Background(), cfg, d); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v", err)
			}
		})
	}
	bad := cfg
	bad.Dir = ""
	if _, err := New(context.Background(), bad, Deps{Host: h, Governance: g, Validators: vals}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad config: err = %v", err)
	}
	// A single validator elects itself, commits, and Close is idempotent.
	c.leader([]int{0})
	c.propose("solo")
	c.waitEntries([]int{0}, 1, 10*time.Second)
	if err := c.nodes[0].svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[0].svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[0].svc.Start(context.Background()); !errors.Is(err, errClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}
