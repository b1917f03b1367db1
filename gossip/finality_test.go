package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

func ratifyOp(t *testing.T, key crypto.PrivKey, prop *Op, e execlog.Entry, seq uint64) []byte {
	t.Helper()
	var deps []OpID
	if prop != nil {
		deps = []OpID{prop.ID}
	}
	op, err := encodeOp(key, testNet, opDraft{Kind: KindRatify, Seq: seq, Deps: deps,
		Body: ratifyBody{Entry: e, EntryHash: e.Hash()}})
	if err != nil {
		t.Fatal(err)
	}
	return op.Raw
}

// finalityFixture is a node that is no validator, beside four validator
// keys (finality needs 3 of 4); members are more keys that are members but
// no validators.
type finalityFixture struct {
	t    *testing.T
	n    *tnode
	rb   *rulesBox
	vals []crypto.PrivKey
	ids  []peer.ID
	self crypto.PrivKey
	ds   any
}

func newFinalityFixture(t *testing.T, members ...crypto.PrivKey) *finalityFixture {
	f := &finalityFixture{t: t, rb: &rulesBox{}, self: newKey(t)}
	for i := 0; i < 4; i++ {
		f.vals = append(f.vals, newKey(t))
	}
	keys := append([]crypto.PrivKey{f.self}, members...)
	rules := makeRules(append(keys, f.vals...), 0, genesis.DefaultGovernance())
	for _, k := range f.vals {
		id, _ := peer.IDFromPrivateKey(k)
		f.ids = append(f.ids, id)
		rules.Validators = append(rules.Validators, id)
	}
	sortIDs(rules.Validators)
	f.rb.set(rules)
	return f
}

func (f *finalityFixture) proposal(n *tnode, i int) (*Op, execlog.Entry) {
	f.t.Helper()
	pid, err := n.svc.PublishProposal(context.Background(), testBody(i))
	if err != nil {
		f.t.Fatal(err)
	}
	v, _ := n.svc.Proposal(pid, time.Now())
	opid, _ := ParseOpID(v.OpID)
	prop, _ := n.svc.st.get(opid)
	return prop, execlog.Entry{ProposalID: pid, Version: v.Body.Version, PackageURL: v.Body.PackageURL,
		PackageHash: v.Body.PackageHash, PackageSize: v.Body.PackageSize}
}

// TestFinality: more than 2/3 of the validators in force, chains, void
// entries, equivocating validators, rules per seq, and final marks that
// survive a validator-set change and a restart.
func TestFinality(t *testing.T) {
	f := newFinalityFixture(t)
	ds := memDS()
	n := startNode(t, f.self, ds, f.rb, testConfig())
	mustIngest := func(raw []byte) {
		t.Helper()
		if err := n.svc.Ingest(raw); err != nil {
			t.Fatal(err)
		}
	}
	prop, e1 := f.proposal(n, 1)
	e1.Seq = 1
	e1b := e1
	e1b.PackageURL = "https://other.example/pkg.wasm" // does not match the proposal
	if err := n.svc.Ingest(ratifyOp(t, f.vals[0], prop, e1b, 1)); err == nil {
		t.Fatal("ratify of an entry that does not match its proposal was accepted")
	}
	events, stop := n.svc.Subscribe()
	defer stop()
	mustIngest(ratifyOp(t, f.vals[0], prop, e1, 1))
	mustIngest(ratifyOp(t, f.vals[1], prop, e1, 1))
	if len(n.svc.ExecutionLog()) != 0 {
		t.Fatal("2 of 4 validators finalised an entry")
	}
	mustIngest(ratifyOp(t, f.vals[2], prop, e1, 1))
	if log := n.svc.ExecutionLog(); len(log) != 1 || log[0] != e1 {
		t.Fatalf("log %+v", log)
	}
	testutil.WaitFor(t, 5*time.Second, "entry_final event", func() bool {
		for {
			select {
			case ev := <-events:
				if ev.Kind == EntryFinal && ev.Seq == 1 {
					return true
				}
			default:
				return false
			}
		}
	})

	// Seq 2: a void entry that chains becomes final.
	prop2, e2 := f.proposal(n, 2)
	e2.Seq = 2
	void2 := VoidEntryAt(2, e1.Hash())
	for i, k := range f.vals[1:] {
		mustIngest(ratifyOp(t, k, nil, void2, uint64(10+i)))
	}
	if log := n.svc.ExecutionLog(); len(log) != 2 || log[1] != void2 {
		t.Fatalf("void seq 2 not final: %+v", log)
	}

	// Seq 3: validator 2 signs two entries; it counts for neither.
	_, e3 := f.proposal(n, 3)
	e3.Seq, e3.PrevEntryHash = 3, void2.Hash()
	p3, _ := n.svc.st.get(mustOpID(t, n, e3.ProposalID))
	alt := e3
	alt.ProposalID, alt.Version, alt.PackageURL, alt.PackageHash, alt.PackageSize = e2.ProposalID, e2.Version, e2.PackageURL, e2.PackageHash, e2.PackageSize
	mustIngest(ratifyOp(t, f.vals[0], p3, e3, 20))
	mustIngest(ratifyOp(t, f.vals[1], p3, e3, 21))
	mustIngest(ratifyOp(t, f.vals[2], prop2, alt, 22))
	mustIngest(ratifyOp(t, f.vals[2], p3, e3, 23))
	if len(n.svc.ExecutionLog()) != 2 {
		t.Fatal("an equivocating validator's signature completed a quorum")
	}
	ev := n.svc.Equivocations()
	if len(ev) != 1 || ev[0].Validator != f.ids[2] || ev[0].Seq != 3 || len(ev[0].OpIDs) != 2 {
		t.Fatalf("equivocation evidence %+v", ev)
	}
	// A third entry from the same validator at seq 3 is not kept.
	if err := n.svc.Ingest(ratifyOp(t, f.vals[2], prop, execlog.Entry{Seq: 3, ProposalID: e1.ProposalID, Version: e1.Version,
		PackageURL: e1.PackageURL, PackageHash: e1.PackageHash, PackageSize: e1.PackageSize, PrevEntryHash: void2.Hash()}, 24)); err == nil {
		t.Fatal("a third signature at one seq was kept")
	}
	mustIngest(ratifyOp(t, f.vals[3], p3, e3, 25))
	if log := n.svc.ExecutionLog(); len(log) != 3 || log[2] != e3 {
		t.Fatalf("seq 3 with three honest signatures: %+v", log)
	}

	// Seq 4 counts against the rules in force for seq 4: validators 0 and
	// 1 were removed by entry 3, so their signatures do not count, even
	// though this node's current rules still list them.
	r4 := f.rb.get()
	r4.Validators = []peer.ID{f.ids[2], f.ids[3]}
	sortIDs(r4.Validators)
	f.rb.setFor(4, r4)
	n.svc.Refresh()
	_, e4 := f.proposal(n, 4)
	e4.Seq, e4.PrevEntryHash = 4, e3.Hash()
	p4, _ := n.svc.st.get(mustOpID(t, n, e4.ProposalID))
	for i, k := range f.vals[:2] {
		if err := n.svc.Ingest(ratifyOp(t, k, p4, e4, uint64(30+i))); !errors.Is(err, ErrUnauthorised) {
			t.Fatalf("a removed validator's signature on entry 4: %v", err)
		}
	}
	mustIngest(ratifyOp(t, f.vals[2], p4, e4, 32))
	if len(n.svc.ExecutionLog()) != 3 {
		t.Fatal("removed validators finalised an entry (long-range)")
	}
	mustIngest(ratifyOp(t, f.vals[3], p4, e4, 33))
	if log := n.svc.ExecutionLog(); len(log) != 4 || log[3] != e4 {
		t.Fatalf("seq 4 with both validators in force: %+v", log)
	}

	// Rules of seq 5 unknown (seq 4 not executed here): nothing final.
	f.rb.setHorizon(4)
	_, e5 := f.proposal(n, 5)
	e5.Seq, e5.PrevEntryHash = 5, e4.Hash()
	p5, _ := n.svc.st.get(mustOpID(t, n, e5.ProposalID))
	for i, k := range f.vals {
		if err := n.svc.Ingest(ratifyOp(t, k, p5, e5, uint64(40+i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(n.svc.ExecutionLog()) != 4 {
		t.Fatal("an entry became final under unknown rules")
	}
	f.rb.setHorizon(0)
	n.svc.Refresh()
	if len(n.svc.ExecutionLog()) != 5 {
		t.Fatal("entry 5 not final once its rules are known")
	}

	// Validators change to an unrelated set and the node restarts: the
	// entries it saw final stay final.
	r2 := f.rb.get()
	r2.Validators = []peer.ID{n.id}
	f.rb.set(r2)
	f.rb.setFor(4, r2)
	n.stop()
	n2 := startNode(t, f.self, ds, f.rb, testConfig())
	if got := n2.svc.ExecutionLog(); len(got) != 5 || got[4] != e5 {
		t.Fatalf("after restart and validator change: %+v", got)
	}
}

// An entry signed by a quorum that does not chain onto the final entry
// before it never becomes final.
func TestFinalityNeedsChain(t *testing.T) {
	f := newFinalityFixture(t)
	n := startNode(t, f.self, memDS(), f.rb, testConfig())
	prop, e1 := f.proposal(n, 1)
	e1.Seq = 1
	for i, k := range f.vals[:3] {
		if err := n.svc.Ingest(ratifyOp(t, k, prop, e1, uint64(1+i))); err != nil {
			t.Fatal(err)
		}
	}
	prop2, e2 := f.proposal(n, 2)
	e2.Seq, e2.PrevEntryHash = 2, VoidEntryAt(1, "").Hash()
	for i, k := range f.vals {
		if err := n.svc.Ingest(ratifyOp(t, k, prop2, e2, uint64(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	if log := n.svc.ExecutionLog(); len(log) != 1 || log[0] != e1 {
		t.Fatalf("log %+v", log)
	}
}

func mustOpID(t *testing.T, n *tnode, pid string) OpID {
	t.Helper()
	v, err := n.svc.Proposal(pid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ParseOpID(v.OpID)
	return id
}
