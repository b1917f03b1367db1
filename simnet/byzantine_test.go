package simnet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
	"github.com/synapse-p2p/synapse-p2p/simnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// The byzantine tests put a rogue validator or peer, written here, into a
// network of real nodes on 127.0.0.1 and check what docs/threat-model.md
// claims: no honest node executes a proposal its own rules reject, no two
// honest nodes execute different entries at one seq, and the log goes on.
//
// Packages are tiny wasm modules without the upgrade ABI: every node fails
// them the same way (bad_module) without compiling a Go guest, so these
// tests run under -race -short too; what they check is ordering and
// finality, not the guest.

// tinyModule is an empty wasm module with a custom section carrying tag,
// so modules of tags of one length have one size and distinct hashes.
func tinyModule(tag string) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	body := append([]byte{1, 't'}, tag...)
	return append(append(b, 0, byte(len(body))), body...)
}

// pkgRef is a package imported into a node's content store.
type pkgRef struct {
	url, sha string
	size     int64
}

func addPackage(t *testing.T, nd *node.Node, b []byte) pkgRef {
	t.Helper()
	_, _, pkgs := nd.APIBackends()
	info, err := pkgs.AddPackage(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return pkgRef{info.URL, info.SHA256, info.Size}
}

// proposeOn proposes p from node i and waits until every running node
// sees it.
func proposeOn(t *testing.T, net *simnet.Net, i int, title, version string, p pkgRef) string {
	t.Helper()
	ctx := context.Background()
	gov, _, _ := net.Nodes[i].APIBackends()
	prop, err := gov.Propose(ctx, httpapi.ProposeRequest{Title: title, Version: version,
		PackageURL: p.url, PackageHash: p.sha, PackageSize: p.size})
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		if nd == nil {
			continue
		}
		testutil.WaitFor(t, 30*time.Second, "proposal visible everywhere", func() bool {
			_, err := nd.Gossip().Proposal(prop.ProposalID, time.Now())
			return err == nil
		})
	}
	return prop.ProposalID
}

// vote casts choice on proposal id from each of the nodes.
func vote(t *testing.T, net *simnet.Net, id, choice string, nodes ...int) {
	t.Helper()
	for _, i := range nodes {
		if err := net.Nodes[i].Gossip().PublishVote(context.Background(), id, choice); err != nil {
			t.Fatalf("node %d votes %s: %v", i, choice, err)
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

// leaderIndex waits for the validators to agree on a raft leader.
func leaderIndex(t *testing.T, net *simnet.Net) int {
	t.Helper()
	l := -1
	testutil.WaitFor(t, 30*time.Second, "a raft leader", func() bool {
		for i, nd := range net.Nodes {
			if nd != nil && nd.Raft().IsLeader() {
				l = i
				return true
			}
		}
		return false
	})
	return l
}

// applyAsLeader commits r through whichever node leads raft (retrying
// across leader changes) and returns that node: the rogue.
func applyAsLeader(t *testing.T, net *simnet.Net, r raftnet.Ratify) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := leaderIndex(t, net)
		_, err := net.Nodes[l].Raft().Apply(r)
		if err == nil {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("apply as leader: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRanEverywhere waits until every running node executed proposal id
// and checks that all of them executed the same entries up to its seq.
func waitRanEverywhere(t *testing.T, net *simnet.Net, id string) uint64 {
	t.Helper()
	var seq uint64
	testutil.WaitFor(t, 120*time.Second, "proposal "+id+" executed everywhere", func() bool {
		for _, nd := range net.Nodes {
			if nd == nil {
				continue
			}
			found := false
			for _, h := range nd.Upgrades().History() {
				if h.Event == upgrade.EventUpgrade && h.ProposalID == id {
					found, seq = true, h.Seq
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	for q := uint64(1); q <= seq; q++ {
		sameEntryEverywhere(t, net, q)
	}
	return seq
}

func nodeKey(t *testing.T, net *simnet.Net, i int) crypto.PrivKey {
	t.Helper()
	k, err := p2p.LoadIdentity(filepath.Join(net.DataDir(i), p2p.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func proposalOp(t *testing.T, nd *node.Node, id string) (gossip.ProposalView, gossip.OpID) {
	t.Helper()
	v, err := nd.Gossip().Proposal(id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	op, err := gossip.ParseOpID(v.OpID)
	if err != nil {
		t.Fatal(err)
	}
	return v, op
}

func entryOf(v gossip.ProposalView, seq uint64, prev string) execlog.Entry {
	return execlog.Entry{Seq: seq, ProposalID: v.ID, Version: v.Body.Version, PackageURL: v.Body.PackageURL,
		PackageHash: v.Body.PackageHash, PackageSize: v.Body.PackageSize, PrevEntryHash: prev}
}

// forgeRatify makes node i's key sign (kind) entry e and relays it from
// node i: a validator turned rogue signing what it likes.
func forgeRatify(t *testing.T, net *simnet.Net, i int, kind string, e execlog.Entry, prop gossip.OpID) error {
	t.Helper()
	raw, err := gossip.SignEntryOp(nodeKey(t, net, i), net.Nodes[i].NetID(), kind, e, prop, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	return net.Nodes[i].Gossip().Relay(context.Background(), raw)
}

// executedHashes maps each running node to the entry hash it executed at
// seq ("" when it did not execute seq).
func executedHashes(net *simnet.Net, seq uint64) map[int]string {
	out := map[int]string{}
	for i, nd := range net.Nodes {
		if nd == nil {
			continue
		}
		out[i] = ""
		for _, h := range nd.Upgrades().History() {
			if h.Seq == seq && (h.Event == upgrade.EventUpgrade || h.Event == upgrade.EventVoid) {
				out[i] = h.EntryHash
			}
		}
	}
	return out
}

// ranProposal reports whether any running node executed proposal id.
func ranProposal(net *simnet.Net, id string) (int, bool) {
	for i, nd := range net.Nodes {
		if nd == nil {
			continue
		}
		for _, h := range nd.Upgrades().History() {
			if h.Event == upgrade.EventUpgrade && h.ProposalID == id {
				return i, true
			}
		}
	}
	return -1, false
}

// sameEntryEverywhere asserts every running node executed one entry hash
// at seq and returns it.
func sameEntryEverywhere(t *testing.T, net *simnet.Net, seq uint64) string {
	t.Helper()
	want := ""
	for i, h := range executedHashes(net, seq) {
		if h == "" {
			t.Fatalf("node %d did not execute seq %d", i, seq)
		}
		if want == "" {
			want = h
		}
		if h != want {
			t.Fatalf("nodes executed different entries at seq %d: %s and %s", seq, want, h)
		}
	}
	return want
}

// TestByzantineLeaderCherryPicksVotes: three members approve a proposal
// and then switch to rejection, the others reject it: every honest view
// says rejected. The raft leader turns rogue: it orders the proposal with
// the stale approvals and signs the entry itself. No honest validator
// attests it, the seq is voided, nobody runs the package, and a
// legitimate proposal after it executes everywhere.
func TestByzantineLeaderCherryPicksVotes(t *testing.T) {
	net := startNet(t, 6, 4)
	bad := addPackage(t, net.Nodes[0], tinyModule("bad"))
	p := proposeOn(t, net, 0, "cherry-picked", "1.2.0", bad)
	approvers := []int{1, 2, 3}
	vote(t, net, p, "approval", approvers...)
	testutil.WaitFor(t, 20*time.Second, "three approvals at node 0", func() bool {
		return len(net.Nodes[0].Gossip().VoteIDs(p)) == 3
	})
	stale := net.Nodes[0].Gossip().VoteIDs(p)
	vote(t, net, p, "rejection", approvers...)
	vote(t, net, p, "rejection", 0, 4, 5)
	for i, nd := range net.Nodes {
		testutil.WaitFor(t, 20*time.Second, "six rejections everywhere", func() bool {
			v, err := nd.Gossip().Proposal(p, time.Now())
			return err == nil && v.Tally.Rejection > 0 && v.Tally.Approval == 0 && len(v.Votes) == 6
		})
		_ = i
	}

	// The rogue leader orders it with the superseded approvals and signs.
	v, op := proposalOp(t, net.Nodes[0], p)
	r, err := raftnet.RatifyFromCandidate(raftnet.Candidate{ProposalID: p, Version: v.Body.Version,
		PackageURL: v.Body.PackageURL, PackageHash: v.Body.PackageHash, PackageSize: v.Body.PackageSize,
		VoteIDs: stale, Approval: 3, Eligible: 3})
	if err != nil {
		t.Fatal(err)
	}
	l := applyAsLeader(t, net, r)
	if err := forgeRatify(t, net, l, gossip.KindRatify, entryOf(v, 1, ""), op); err != nil {
		t.Fatal(err)
	}

	// The seq is voided, and a legitimate proposal goes through after it.
	good := addPackage(t, net.Nodes[1], tinyModule("ok!"))
	q := proposeOn(t, net, 1, "legitimate", "1.3.0", good)
	vote(t, net, q, "approval", span(0, 6)...)
	seq := waitRanEverywhere(t, net, q)
	for i, nd := range net.Nodes {
		for _, e := range nd.Gossip().ExecutionLog()[:seq-1] {
			if !e.Void {
				t.Fatalf("node %d: entry %+v before the legitimate one is not void", i, e)
			}
		}
	}
	if i, ran := ranProposal(net, p); ran {
		t.Fatalf("node %d ran the rejected proposal", i)
	}
}

// TestByzantineLeaderUnsignableCommand: the rogue leader orders an
// approved proposal with a package hash that is not the proposal's, which
// raft's FSM accepts (it cannot know the proposal). No honest validator
// can sign it; the seq is voided and the proposal itself is ordered again
// and executes everywhere.
func TestByzantineLeaderUnsignableCommand(t *testing.T) {
	net := startNet(t, 6, 4)
	pk := addPackage(t, net.Nodes[0], tinyModule("pkg"))
	p := proposeOn(t, net, 0, "tampered", "1.2.0", pk)
	v, _ := proposalOp(t, net.Nodes[0], p)
	r, err := raftnet.RatifyFromCandidate(raftnet.Candidate{ProposalID: p, Version: v.Body.Version,
		PackageURL: v.Body.PackageURL, PackageHash: "sha256:" + fmt.Sprintf("%064x", 7), PackageSize: v.Body.PackageSize})
	if err != nil {
		t.Fatal(err)
	}
	applyAsLeader(t, net, r)
	vote(t, net, p, "approval", span(0, 6)...)
	seq := waitRanEverywhere(t, net, p)
	for i, nd := range net.Nodes {
		log := nd.Gossip().ExecutionLog()
		if seq < 2 || !log[0].Void || log[seq-1].PackageHash != v.Body.PackageHash {
			t.Fatalf("node %d log %+v: want the tampered seq 1 void, then %s with its own package", i, log, p)
		}
	}
}

// rewriter rewrites fixed-length byte patterns in a byte stream while
// active; a pattern split across writes is still found (the held tail is
// released with the next write, or after a short pause). It rewrites every
// occurrence while active, not only the first command: raft resends
// entries a follower refused (after the hang-up that installs the
// rewriter, the first AppendEntries may meet a follower that must first
// catch up), and a rewriter that stopped after one command let the
// resent, untouched entry through (the test failed about one run in two).
type rewriter struct {
	net.Conn
	active  func() bool
	mu      sync.Mutex
	pending []byte
	pairs   [][2][]byte
	timer   *time.Timer
	hits    *atomic.Int64
}

func (w *rewriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	active := w.active()
	if !active && len(w.pending) == 0 {
		return w.Conn.Write(p)
	}
	buf := append(w.pending, p...)
	w.pending = nil
	if !active {
		if _, err := w.Conn.Write(buf); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	for _, pr := range w.pairs {
		if n := bytes.Count(buf, pr[0]); n > 0 {
			buf = bytes.ReplaceAll(buf, pr[0], pr[1])
			w.hits.Add(int64(n))
		}
	}
	// Hold back a tail that could start a pattern.
	hold := 0
	for _, pr := range w.pairs {
		for k := len(pr[0]) - 1; k > 0; k-- {
			if k <= len(buf) && bytes.HasSuffix(buf, pr[0][:k]) {
				hold = max(hold, k)
				break
			}
		}
	}
	out := buf[:len(buf)-hold]
	w.pending = append([]byte(nil), buf[len(buf)-hold:]...)
	if len(w.pending) > 0 {
		w.timer = time.AfterFunc(20*time.Millisecond, w.release)
	}
	if _, err := w.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *rewriter) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.Conn.Write(w.pending)
		w.pending = nil
	}
}

// TestByzantineLeaderEquivocates: the raft leader sends one follower
// (the victim) different AppendEntries than the others — proposal B where
// they get A, both approved, packages of one size — and signs both
// entries at seq 1. The victim attests B, the others A; only A can gather
// a quorum of attests, so no two honest nodes ever execute different
// entries at a seq, the leader's two signatures count for neither (and
// are evidence everywhere), and the log goes on with both proposals.
func TestByzantineLeaderEquivocates(t *testing.T) {
	const victim = 3 // nodes 0..3 are the validators
	var armed atomic.Bool
	var hits atomic.Int64
	var idsP atomic.Pointer[[]peer.ID] // set once every node runs
	var pairs atomic.Pointer[[][2][]byte]
	// The rogue rewrites until the victim's FSM holds B, and no further:
	// the alignment command for seq 1, set{1, A}, must reach it intact.
	var victimHoldsB atomic.Pointer[func() bool]
	var rewired [victim]atomic.Int64 // raft conns to the victim wrapped while armed
	active := func() bool {
		if !armed.Load() {
			return false
		}
		f := victimHoldsB.Load()
		return f == nil || !(*f)()
	}
	nw := startNetWith(t, simnet.Config{Nodes: 6, Validators: 4,
		Tune: func(i int, c *node.Config) {
			c.Raft.StallTimeout = 8 * time.Second
			if i == victim { // it must not lead: the others elect first
				c.Raft.HeartbeatTimeout, c.Raft.ElectionTimeout = 5*time.Second, 5*time.Second
			}
		},
		Options: func(i int) []node.Option {
			// Every other validator turns rogue towards the victim when
			// armed: whichever of them leads rewrites its raft traffic.
			return []node.Option{node.WithRaftConnWrapper(func(remote peer.ID, c net.Conn) net.Conn {
				ids := idsP.Load()
				if i == victim || ids == nil || remote != (*ids)[victim] {
					return c
				}
				pp := pairs.Load()
				if pp == nil {
					return c
				}
				if armed.Load() {
					rewired[i].Add(1)
				}
				return &rewriter{Conn: c, active: active, pairs: *pp, hits: &hits}
			})}
		}})
	var ids []peer.ID
	for _, nd := range nw.Nodes {
		ids = append(ids, nd.ID())
	}
	idsP.Store(&ids)
	if !nw.Nodes[0].Rules().IsValidator(ids[victim]) {
		t.Fatal("node 3 is not a validator")
	}
	a := addPackage(t, nw.Nodes[0], tinyModule("AAA"))
	b := addPackage(t, nw.Nodes[0], tinyModule("BBB"))
	pa := proposeOn(t, nw, 0, "A", "1.2.0", a)
	pb := proposeOn(t, nw, 0, "B", "1.2.0", b)
	va, opA := proposalOp(t, nw.Nodes[0], pa)
	vb, opB := proposalOp(t, nw.Nodes[0], pb)
	holdsB := func() bool {
		for _, sl := range nw.Nodes[victim].Raft().Slots() {
			if sl.Seq == 1 && sl.ProposalID == pb {
				return true
			}
		}
		return false
	}
	victimHoldsB.Store(&holdsB)
	pairs.Store(&[][2][]byte{{[]byte(pa), []byte(pb)}, {[]byte(a.url), []byte(b.url)}, {[]byte(a.sha), []byte(b.sha)}})
	armed.Store(true)
	for i := 0; i < victim; i++ { // new connections pick the rewriter up
		nw.Nodes[i].Host().Network().ClosePeer(ids[victim])
	}
	// Raft redials the victim after a back-off (~2 s). Vote only once the
	// leader's traffic to it goes through the rewriter: otherwise A can be
	// final before the victim gets any entry, the leader then sends it
	// ratify(A→B) and set{1, A} back to back, and B is held for a
	// millisecond that no poll sees (the test failed about one run in two).
	testutil.WaitFor(t, 30*time.Second, "the leader's raft traffic to the victim goes through the rewriter", func() bool {
		l := leaderIndex(t, nw)
		return l < victim && rewired[l].Load() > 0
	})
	vote(t, nw, pa, "approval", span(0, 6)...)
	vote(t, nw, pb, "approval", span(0, 6)...)
	testutil.WaitFor(t, 60*time.Second, "the victim's FSM holds B at seq 1", holdsB)
	armed.Store(false)
	for _, sl := range nw.Nodes[0].Raft().Slots() {
		if sl.Seq == 1 && sl.ProposalID != pa {
			t.Fatalf("node 0's slot 1 is %+v, want A", sl)
		}
	}
	// The leader signs both entries at seq 1.
	rogue := leaderIndex(t, nw)
	for _, x := range []struct {
		v  gossip.ProposalView
		op gossip.OpID
	}{{va, opA}, {vb, opB}} {
		if err := forgeRatify(t, nw, rogue, gossip.KindRatify, entryOf(x.v, 1, ""), x.op); err != nil {
			t.Logf("rogue signature: %v", err)
		}
	}
	sa := waitRanEverywhere(t, nw, pa)
	sb := waitRanEverywhere(t, nw, pb)
	if hits.Load() == 0 {
		t.Fatal("the rogue never rewrote a byte")
	}
	if sa != 1 && sb != 1 {
		log := nw.Nodes[0].Gossip().ExecutionLog()
		if !log[0].Void {
			t.Fatalf("seq 1 is %+v: neither A, B nor void", log[0])
		}
	}
	if sb == 1 {
		t.Fatal("B, which only the victim was given, became final at seq 1")
	}
	for _, nd := range nw.Nodes {
		testutil.WaitFor(t, 20*time.Second, "the rogue's two signatures are evidence everywhere", func() bool {
			for _, ev := range nd.Gossip().Equivocations() {
				if ev.Seq == 1 && ev.Validator == ids[rogue] {
					return true
				}
			}
			return false
		})
	}
	// The victim's FSM follows the final log again.
	testutil.WaitFor(t, 30*time.Second, "the victim's slots follow the final log", func() bool {
		sl := nw.Nodes[victim].Raft().Slots()
		for _, e := range nw.Nodes[victim].Gossip().ExecutionLog() {
			if int(e.Seq) > len(sl) || sl[e.Seq-1].ProposalID != e.ProposalID || sl[e.Seq-1].Void != e.Void {
				return false
			}
		}
		return true
	})
}

// TestByzantineOneOfFourValidators: with four validators, one signs and
// attests a void entry at seq 1 instead of the approved upgrade; the three
// honest ones are more than 2/3, so the legitimate upgrade is final and
// executes on every node with one state hash, and the rogue is evidence
// of nothing (it signed once) but counts for nothing either.
func TestByzantineOneOfFourValidators(t *testing.T) {
	nw := startNet(t, 6, 4)
	rogue := -1
	for i, nd := range nw.Nodes {
		if nw.Nodes[0].Rules().IsValidator(nd.ID()) && !nd.Raft().IsLeader() {
			rogue = i
			break
		}
	}
	void := gossip.VoidEntryAt(1, "")
	for _, kind := range []string{gossip.KindAttest, gossip.KindRatify} {
		if err := forgeRatify(t, nw, rogue, kind, void, gossip.OpID{}); err != nil {
			t.Fatal(err)
		}
	}
	pk := addPackage(t, nw.Nodes[0], tinyModule("leg"))
	p := proposeOn(t, nw, 0, "legitimate", "1.2.0", pk)
	vote(t, nw, p, "approval", span(0, 6)...)
	waitExecuted(t, nw, 1)
	sameEntryEverywhere(t, nw, 1)
	for i, nd := range nw.Nodes {
		log := nd.Gossip().ExecutionLog()
		if log[0].ProposalID != p {
			t.Fatalf("node %d seq 1 = %+v", i, log[0])
		}
		if got := nd.Gossip().Signers(1, log[0].Hash()); len(got) < 3 {
			t.Fatalf("node %d: %d signers", i, len(got))
		}
	}
}

// TestByzantineRemovedValidatorsLongRange: an upgrade replaces three of
// the four genesis validators. The removed ones (enough to finalise under
// the genesis rules) then sign a seq-2 entry nobody approved. The nodes
// that executed the upgrade refuse the signatures outright; a node that
// was offline and restarts on the genesis rules stores them, but counts
// signatures for entry 2 only under the rules in force for entry 2 — so
// it never sees the forged entry final, and executes the legitimate
// seq 2 like everyone else.
func TestByzantineRemovedValidatorsLongRange(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs a Go guest")
	}
	nw := startNet(t, 8, 4)
	byID := func(ids []peer.ID) []int {
		var out []int
		for _, id := range ids {
			for i, nd := range nw.Nodes {
				if nd.ID() == id {
					out = append(out, i)
				}
			}
		}
		return out
	}
	genesisVals := nw.Nodes[0].Rules().Validators // sorted
	removed := byID(genesisVals[:3])
	var members []peer.ID
	for _, nd := range nw.Nodes {
		if !nw.Nodes[0].Rules().IsValidator(nd.ID()) {
			members = append(members, nd.ID())
		}
	}
	sortPeers(members)
	lagging := byID(members[3:4])[0] // not among the three added
	q := proposeOn(t, nw, removed[0], "never approved", "1.3.0", addPackage(t, nw.Nodes[removed[0]], tinyModule("qqq")))
	vq, opQ := proposalOp(t, nw.Nodes[0], q)

	ctx := context.Background()
	if err := nw.StopNode(ctx, lagging); err != nil {
		t.Fatal(err)
	}
	propose(t, nw, buildTestdata(t, "rotate-validators"), "1.1.0", "")
	waitExecuted(t, nw, 1)
	if got := nw.Nodes[0].Rules().Validators; len(got) != 4 || got[0] == genesisVals[0] && got[1] == genesisVals[1] {
		t.Fatalf("validators after the rotation: %v", got)
	}
	e1 := nw.Nodes[0].Gossip().ExecutionLog()[0]
	forged := entryOf(vq, 2, e1.Hash())
	var raws [][]byte
	for k, i := range removed {
		raw, err := gossip.SignEntryOp(nodeKey(t, nw, i), nw.Nodes[0].NetID(), gossip.KindRatify, forged, opQ, uint64(time.Now().UnixNano())+uint64(k))
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		if err := nw.Nodes[0].Gossip().Ingest(raw); !errors.Is(err, gossip.ErrUnauthorised) {
			t.Fatalf("an up-to-date node took a removed validator's signature: %v", err)
		}
	}
	if err := nw.RestartNode(ctx, lagging); err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		if err := nw.Nodes[lagging].Gossip().Ingest(raw); err != nil && !errors.Is(err, gossip.ErrUnauthorised) {
			t.Logf("lagging node: %v", err)
		}
	}
	waitExecuted(t, nw, 1)
	z := proposeOn(t, nw, 1, "legitimate", "1.2.0", addPackage(t, nw.Nodes[1], tinyModule("zzz")))
	vote(t, nw, z, "approval", span(0, 8)...)
	waitExecuted(t, nw, 2)
	for i, nd := range nw.Nodes {
		log := nd.Gossip().ExecutionLog()
		if log[1].Hash() == forged.Hash() || log[1].ProposalID != z {
			t.Fatalf("node %d: seq 2 is %+v", i, log[1])
		}
	}
	sameEntryEverywhere(t, nw, 1)
	sameEntryEverywhere(t, nw, 2)
	if i, ran := ranProposal(nw, q); ran {
		t.Fatalf("node %d ran the forged entry's proposal", i)
	}
}

func sortPeers(ids []peer.ID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
