package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func ratifyOp(t *testing.T, key crypto.PrivKey, prop *Op, e Entry, seq uint64) []byte {
	t.Helper()
	op, err := encodeOp(key, testNet, opDraft{Kind: KindRatify, Seq: seq, Deps: []OpID{prop.ID},
		Body: ratifyBody{Entry: entryCBOR(e), EntryHash: e.Hash()}})
	if err != nil {
		t.Fatal(err)
	}
	return op.Raw
}

// TestFinality: majority of validators, conflicting majorities, broken
// chains, and final marks that survive a validator-set change and restart.
func TestFinality(t *testing.T) {
	vals := []crypto.PrivKey{newKey(t), newKey(t), newKey(t)}
	self := newKey(t)
	rb := &rulesBox{}
	rules := makeRules(append([]crypto.PrivKey{self}, vals...), 0, genesis.DefaultGovernance())
	for _, k := range vals {
		id, _ := peer.IDFromPrivateKey(k)
		rules.Validators = append(rules.Validators, id)
	}
	sortIDs(rules.Validators)
	rb.set(rules)
	ds := memDS()
	n := startNode(t, self, ds, rb, testConfig())
	ctx := context.Background()
	pid, err := n.svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := n.svc.Proposal(pid, time.Now())
	opid, _ := ParseOpID(v.OpID)
	prop, _ := n.svc.st.get(opid)
	e1 := Entry{Seq: 1, ProposalID: pid, Version: v.Body.Version, PackageURL: v.Body.PackageURL,
		PackageHash: v.Body.PackageHash, PackageSize: v.Body.PackageSize}
	e1b := e1
	e1b.PackageURL = "https://other.example/pkg.wasm" // does not match the proposal
	if err := n.svc.Ingest(ratifyOp(t, vals[0], prop, e1b, 1)); err == nil {
		t.Fatal("ratify of an entry that does not match its proposal was accepted")
	}

	mustIngest := func(raw []byte) {
		t.Helper()
		if err := n.svc.Ingest(raw); err != nil {
			t.Fatal(err)
		}
	}
	events, stop := n.svc.Subscribe()
	defer stop()
	mustIngest(ratifyOp(t, vals[0], prop, e1, 1))
	if len(n.svc.ExecutionLog()) != 0 {
		t.Fatal("1 of 3 validators finalised an entry")
	}
	mustIngest(ratifyOp(t, vals[1], prop, e1, 1))
	if log := n.svc.ExecutionLog(); len(log) != 1 || log[0] != e1 {
		t.Fatalf("log %+v", log)
	}
	select {
	case ev := <-events:
		if ev.Kind != EntryFinal && ev.Kind != ProposalChanged {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	// Seq 2 with a prev hash that does not chain stays out of the log.
	pid2, err := n.svc.PublishProposal(ctx, testBody(2))
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := n.svc.Proposal(pid2, time.Now())
	opid2, _ := ParseOpID(v2.OpID)
	prop2, _ := n.svc.st.get(opid2)
	bad := Entry{Seq: 2, ProposalID: pid2, Version: v2.Body.Version, PackageURL: v2.Body.PackageURL,
		PackageHash: v2.Body.PackageHash, PackageSize: v2.Body.PackageSize, PrevEntryHash: e1b.Hash()}
	mustIngest(ratifyOp(t, vals[0], prop2, bad, 2))
	mustIngest(ratifyOp(t, vals[1], prop2, bad, 2))
	if len(n.svc.ExecutionLog()) != 1 {
		t.Fatal("an entry that does not chain became final")
	}
	// Two different seq-3... first the proper seq 2, signed by all three,
	// then two conflicting seq-3 entries with majorities each (validator
	// 1 signs both): the smaller entry hash wins.
	good := bad
	good.PrevEntryHash = e1.Hash()
	for i, k := range vals {
		mustIngest(ratifyOp(t, k, prop2, good, uint64(10+i)))
	}
	if log := n.svc.ExecutionLog(); len(log) != 2 || log[1] != good {
		t.Fatalf("log %+v", log)
	}
	pid3, _ := n.svc.PublishProposal(ctx, testBody(3))
	v3, _ := n.svc.Proposal(pid3, time.Now())
	opid3, _ := ParseOpID(v3.OpID)
	prop3, _ := n.svc.st.get(opid3)
	a := Entry{Seq: 3, ProposalID: pid3, Version: v3.Body.Version, PackageURL: v3.Body.PackageURL,
		PackageHash: v3.Body.PackageHash, PackageSize: v3.Body.PackageSize, PrevEntryHash: good.Hash()}
	b := a
	b.ProposalID = pid2
	b.Version, b.PackageURL, b.PackageHash, b.PackageSize = v2.Body.Version, v2.Body.PackageURL, v2.Body.PackageHash, v2.Body.PackageSize
	mustIngest(ratifyOp(t, vals[0], prop3, a, 20))
	mustIngest(ratifyOp(t, vals[1], prop3, a, 21))
	mustIngest(ratifyOp(t, vals[1], prop2, b, 22))
	mustIngest(ratifyOp(t, vals[2], prop2, b, 23))
	want := a
	if b.Hash() < a.Hash() {
		want = b
	}
	log := n.svc.ExecutionLog()
	if len(log) != 3 || log[2] != want {
		t.Fatalf("conflict resolved to %+v, want %+v", log[len(log)-1], want)
	}

	// Validators change to an unrelated set and the node restarts: the
	// entries it saw final stay final.
	r2 := rb.get()
	r2.Validators = []peer.ID{n.id}
	rb.set(r2)
	n.stop()
	n2 := startNode(t, self, ds, rb, testConfig())
	if got := n2.svc.ExecutionLog(); len(got) != 3 || got[2] != want {
		t.Fatalf("after restart and validator change: %+v", got)
	}
}
