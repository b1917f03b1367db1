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
)

// ready is a prepare func for which every package is ready.
func ready(context.Context, execlog.Entry) Readiness {
	return Readiness{Ready: true, PackageCID: "QmTest"}
}

// endorseFixture: node v is one of four validators (the other three are
// keys the test signs with); the rules also make six members eligible.
type endorseFixture struct {
	t      *testing.T
	rb     *rulesBox
	ds     any
	v      *tnode
	others []crypto.PrivKey
	voters []crypto.PrivKey
	opSeq  uint64 // op seq of the next forged attest (grows: latest wins)
}

func newEndorseFixture(t *testing.T) (*endorseFixture, func() *tnode) {
	f := &endorseFixture{t: t, rb: &rulesBox{}}
	vkey := newKey(t)
	for i := 0; i < 3; i++ {
		f.others = append(f.others, newKey(t))
	}
	for i := 0; i < 6; i++ {
		f.voters = append(f.voters, newKey(t))
	}
	keys := append([]crypto.PrivKey{vkey}, f.others...)
	rules := makeRules(append(keys, f.voters...), 4, genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true})
	// Only the six voters are eligible; the validators do not vote.
	for _, k := range keys {
		id, _ := peer.IDFromPrivateKey(k)
		delete(rules.Reputation, id)
	}
	f.rb.set(rules)
	ds := memDS()
	start := func() *tnode { return startNode(t, vkey, ds, f.rb, testConfig()) }
	f.v = start()
	return f, start
}

// proposal publishes a proposal from voter 0 (relayed into v) and returns
// its op and the entry at seq 1.
func (f *endorseFixture) proposal(i int) (*Op, execlog.Entry) {
	f.t.Helper()
	op, err := encodeOp(f.voters[0], testNet, opDraft{Kind: KindProposal, Seq: uint64(100 + i), TS: time.Unix(1700000000+int64(i), 0),
		Body: proposalBody{Type: "code_upgrade", Title: "p", Version: "1.2.0", PackageURL: "ipfs://bafy" + string(rune('a'+i)),
			PackageHash: testBody(i).PackageHash, PackageSize: 100}})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.v.svc.Ingest(op.Raw); err != nil {
		f.t.Fatal(err)
	}
	return op, execlog.Entry{Seq: 1, ProposalID: proposalIDFor(op), Version: "1.2.0", PackageURL: op.Proposal.PackageURL,
		PackageHash: op.Proposal.PackageHash, PackageSize: 100}
}

// votes makes voters[from:to] vote choice on prop (with op seq s).
func (f *endorseFixture) votes(prop *Op, choice string, s uint64, from, to int) {
	f.t.Helper()
	for _, k := range f.voters[from:to] {
		if err := f.v.svc.Ingest(voteOp(f.t, k, prop, s, choice).Raw); err != nil {
			f.t.Fatal(err)
		}
	}
}

// attest makes the other validators attest e.
func (f *endorseFixture) attest(e execlog.Entry, prop *Op, n int) {
	f.t.Helper()
	for _, k := range f.others[:n] {
		f.opSeq++
		raw, err := SignEntryOp(k, testNet, KindAttest, e, prop.ID, 1000+f.opSeq)
		if err != nil {
			f.t.Fatal(err)
		}
		if err := f.v.svc.Ingest(raw); err != nil {
			f.t.Fatal(err)
		}
	}
}

// An honest validator attests only what its own op set approves, signs
// only a quorum-attested entry, never on the leader's word, and never two
// entries at one seq — across a restart (signing record).
func TestEndorseSigningRecord(t *testing.T) {
	f, start := newEndorseFixture(t)
	ctx := context.Background()
	pa, ea := f.proposal(0)
	pb, eb := f.proposal(1)
	slotOf := func(e execlog.Entry) *Slot {
		return &Slot{ProposalID: e.ProposalID, Version: e.Version, PackageURL: e.PackageURL, PackageHash: e.PackageHash, PackageSize: e.PackageSize}
	}

	// Voting still open: the validator waits, attests nothing.
	p, err := f.v.svc.Endorse(ctx, 1, slotOf(ea), ready)
	if err != nil || p.Attested || p.Waiting == "" || p.Ratified != "" {
		t.Fatalf("open vote: %+v %v", p, err)
	}
	// A package not ready yet: no attest either.
	f.votes(pa, ChoiceApproval, 1, 0, 4) // 4 of 6 approve: early approval
	p, _ = f.v.svc.Endorse(ctx, 1, slotOf(ea), func(context.Context, execlog.Entry) Readiness {
		return Readiness{Reason: "downloading", Pending: true}
	})
	if p.Attested || !p.Preparing {
		t.Fatalf("package not ready: %+v", p)
	}
	// Approved and ready: it attests, but one attest is no quorum.
	p, _ = f.v.svc.Endorse(ctx, 1, slotOf(ea), ready)
	if !p.Attested || p.Ratified != "" || p.Quorum != "" {
		t.Fatalf("approved: %+v", p)
	}
	if got := f.v.svc.Attests(1)[f.v.id]; got != ea.Hash() {
		t.Fatalf("own attest %q", got)
	}
	// The leader's word (a slot for B, which voters did not approve) is
	// not enough, even with a quorum of other validators attesting B.
	f.attest(eb, pb, 3)
	p, _ = f.v.svc.Endorse(ctx, 1, slotOf(eb), ready)
	if p.Attested || p.Ratified != "" {
		t.Fatalf("attested or signed an unapproved entry: %+v", p)
	}
	// Two others attest A: with its own attest that is 3 of 4 — it signs A.
	f.attest(ea, pa, 2)
	p, err = f.v.svc.Endorse(ctx, 1, slotOf(ea), ready)
	if err != nil || p.Ratified != ea.Hash() || p.Quorum != ea.Hash() {
		t.Fatalf("quorum-attested A not signed: %+v %v", p, err)
	}
	if f.v.svc.signedAt(1) != ea.Hash() {
		t.Fatal("no signing record")
	}

	// Restart; B gets approved and a quorum of attests. The record holds.
	f.v.stop()
	v2 := start()
	f.v = v2
	f.votes(pb, ChoiceApproval, 2, 0, 6)
	f.attest(eb, pb, 3)
	p, err = v2.svc.Endorse(ctx, 1, slotOf(eb), ready)
	if err != nil || p.Ratified != ea.Hash() {
		t.Fatalf("after restart: %+v %v", p, err)
	}
	if got := v2.svc.Signers(1, eb.Hash()); len(got) != 0 {
		t.Fatalf("signed B after A: %v", got)
	}
	if err := v2.svc.sign(ctx, eb, ""); !errors.Is(err, ErrDoubleSign) {
		t.Fatalf("direct second signature: %v", err)
	}
}

// A proposal its voters approved and then rejected is not attested: the
// validator counts each voter's latest vote over every vote it holds.
func TestEndorseCountsLatestVotes(t *testing.T) {
	f, _ := newEndorseFixture(t)
	ctx := context.Background()
	pa, ea := f.proposal(0)
	f.votes(pa, ChoiceApproval, 1, 0, 4)
	f.votes(pa, ChoiceRejection, 2, 0, 4)
	f.votes(pa, ChoiceRejection, 1, 4, 6)
	f.attest(ea, pa, 3) // a rogue majority attests it
	p, err := f.v.svc.Endorse(ctx, 1, &Slot{ProposalID: ea.ProposalID, Version: ea.Version, PackageURL: ea.PackageURL,
		PackageHash: ea.PackageHash, PackageSize: ea.PackageSize}, ready)
	if err != nil || p.Attested || p.Ratified != "" {
		t.Fatalf("rejected proposal: %+v %v", p, err)
	}
	if p.Waiting == "" {
		t.Fatalf("no reason given: %+v", p)
	}
}
