package gossip

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// validateFixture is a small fixed op set and the rules around it. Keys
// come from fixed seeds, so corpus entries stay meaningful across runs:
// keys[0] and keys[1] are validators, keys[0..2] may vote, keys[3] is a
// stranger. Rules are known for entries up to seq 2.
type validateFixture struct {
	keys    []crypto.PrivKey
	ids     []peer.ID
	byID    map[peer.ID]crypto.PrivKey
	rules   genesis.Rules
	set     map[OpID]*Op
	prop    *Op           // in the set
	other   *Op           // a proposal not in the set
	entry   execlog.Entry // entry 1 for prop
	seeds   []*Op         // in and beside the set
	checker opChecker
}

const validateHorizon = 2

func newValidateFixture(tb testing.TB) *validateFixture {
	tb.Helper()
	fx := &validateFixture{byID: map[peer.ID]crypto.PrivKey{}, set: map[OpID]*Op{}}
	for i := range 4 {
		seed := sha256.Sum256(fmt.Appendf(nil, "gossip-validate-fuzz-%d", i))
		k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(seed[:]))
		if err != nil {
			tb.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		fx.keys, fx.ids = append(fx.keys, k), append(fx.ids, id)
		fx.byID[id] = k
	}
	fx.rules = makeRules(fx.keys[:3], 2, genesis.DefaultGovernance())
	enc := func(k int, d opDraft) *Op {
		tb.Helper()
		op, err := encodeOp(fx.keys[k], testNet, d)
		if err != nil {
			tb.Fatal(err)
		}
		return op
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fx.prop = enc(2, opDraft{Kind: KindProposal, Seq: 1, Lamport: 1, TS: ts, Body: proposalBodyOf(testBody(1))})
	fx.other = enc(0, opDraft{Kind: KindProposal, Seq: 1, Lamport: 1, TS: ts, Body: proposalBodyOf(testBody(2))})
	pid := proposalIDFor(fx.prop)
	vote := func(k int, seq uint64, p *Op, choice string) *Op {
		return enc(k, opDraft{Kind: KindVote, Seq: seq, Lamport: 2, TS: ts, Deps: []OpID{p.ID},
			Body: voteBody{ProposalID: proposalIDFor(p), Choice: choice}})
	}
	v0, v2 := vote(0, 2, fx.prop, ChoiceApproval), vote(2, 2, fx.prop, ChoiceRejection)
	for _, op := range []*Op{fx.prop, v0, v2} {
		fx.set[op.ID] = op
	}
	b := testBody(1)
	fx.entry = execlog.Entry{Seq: 1, ProposalID: pid, Version: b.Version, PackageURL: b.PackageURL, PackageHash: b.PackageHash, PackageSize: b.PackageSize}
	later := fx.entry
	later.Seq, later.PrevEntryHash = 5, fx.entry.Hash()
	void := execlog.Entry{Seq: 2, Void: true, PrevEntryHash: fx.entry.Hash()}
	ratify := func(k int, kind string, seq uint64, e execlog.Entry, deps ...OpID) *Op {
		cid := "bafyfuzz" // announced where the signer holds the package
		if e.Void {
			cid = ""
		}
		return enc(k, opDraft{Kind: kind, Seq: seq, Lamport: 3, TS: ts, Deps: deps,
			Body: ratifyBody{Entry: e, EntryHash: e.Hash(), PackageCID: cid}})
	}
	fx.seeds = []*Op{
		fx.prop, v0, v2, // duplicates
		vote(1, 3, fx.prop, ChoiceApproval),            // a validator's vote: accepted
		vote(0, 3, fx.prop, ChoiceRejection),           // a newer vote: accepted
		vote(3, 1, fx.prop, ChoiceApproval),            // a stranger's: unauthorised
		vote(0, 4, fx.other, ChoiceApproval),           // on an unknown proposal: missing deps
		fx.other,                                       // a validator's proposal: accepted
		ratify(0, KindRatify, 5, fx.entry, fx.prop.ID), // accepted
		ratify(1, KindAttest, 5, fx.entry, fx.prop.ID), // accepted
		ratify(2, KindRatify, 5, fx.entry, fx.prop.ID), // not a validator: unauthorised
		ratify(2, KindRatify, 6, later, fx.prop.ID),    // rules of entry 5 unknown: pending
		ratify(0, KindRatify, 7, void, fx.prop.ID),     // void with deps: invalid
		ratify(0, KindRatify, 8, void),                 // void: accepted
		ratify(0, KindRatify, 9, fx.entry, v0.ID),      // dep is a vote, not its proposal
		enc(2, opDraft{Kind: KindReport, Seq: 3, TS: ts, Body: reportBody{Seq: 1, EntryHash: fx.entry.Hash(),
			ProposalID: pid, Success: true, Version: b.Version, PostStateSHA256: fmt.Sprintf("%064x", 7)}}),
		enc(3, opDraft{Kind: KindReport, Seq: 1, TS: ts, Body: reportBody{Seq: 1, EntryHash: fx.entry.Hash(), ErrorClass: "trap"}}),
	}
	fx.checker = opChecker{
		NetID: testNet,
		Rules: fx.rules,
		RulesFor: func(seq uint64) (genesis.Rules, bool) {
			if seq > validateHorizon {
				return genesis.Rules{}, false
			}
			return fx.rules, true
		},
		Lookup: func(id OpID) (*Op, bool) { op, ok := fx.set[id]; return op, ok },
	}
	return fx
}

func proposalBodyOf(b ProposalBody) proposalBody {
	return proposalBody{Type: "code_upgrade", Title: b.Title, Description: b.Description, Version: b.Version,
		PackageURL: b.PackageURL, PackageHash: b.PackageHash, PackageSize: b.PackageSize}
}

// draftOf rebuilds the draft an accepted op was signed from.
func draftOf(op *Op) opDraft {
	d := opDraft{Kind: op.Kind, Seq: op.Seq, Lamport: op.Lamport, TS: op.TS, Deps: op.Deps}
	switch {
	case op.Proposal != nil:
		d.Body = proposalBodyOf(*op.Proposal)
	case op.Vote != nil:
		d.Body = voteBody{ProposalID: op.Vote.ProposalID, Choice: op.Vote.Choice}
	case op.Ratify != nil:
		d.Body = ratifyBody{Entry: op.Ratify.Entry, EntryHash: op.Ratify.EntryHash, PackageCID: op.Ratify.PackageCID}
	case op.Report != nil:
		d.Body = reportBody(*op.Report)
	}
	return d
}

// FuzzValidate: opChecker.validate never panics and is deterministic. With
// signer 0 the input is a wire op as is; with signer k it is the unsigned
// op, signed here by fixture key k−1 (so the fuzzer reaches the checks
// behind the signature). An accepted op is not in the set, re-encodes
// from its decoded fields to exactly its bytes with the same ID, comes
// from an author the rules allow for its kind, and has the deps its kind
// needs, present in the set; a duplicate is in the set; missing deps are
// missing; pending rules are only for ratify/attest ops beyond the
// horizon; every other error wraps ErrInvalidOp.
func FuzzValidate(f *testing.F) {
	fx := newValidateFixture(f)
	for _, op := range fx.seeds {
		f.Add(op.Raw, uint8(0))
		var w wireOp
		if err := decodeStrict(op.Raw, &w); err != nil {
			f.Fatal(err)
		}
		for k, id := range fx.ids {
			if id == op.Author {
				f.Add([]byte(w.Op), uint8(k+1))
			}
		}
	}
	f.Add([]byte{0xa0}, uint8(0))
	f.Add([]byte{0xa0}, uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, signer uint8) {
		raw := in
		if signer != 0 {
			key := fx.keys[int(signer-1)%len(fx.keys)]
			sig, err := key.Sign(sigMessage(testNet, in))
			if err != nil {
				t.Fatal(err)
			}
			if raw, err = encMode.Marshal(wireOp{Op: in, Sig: sig}); err != nil {
				return // not a CBOR item: nothing to wrap
			}
		}
		op, err := fx.checker.validate(raw)
		op2, err2 := fx.checker.validate(raw)
		if fmt.Sprint(err) != fmt.Sprint(err2) || (op == nil) != (op2 == nil) || (op != nil && op.ID != op2.ID) {
			t.Fatalf("validate not deterministic: %v / %v", err, err2)
		}
		var missing *missingDepsError
		switch {
		case err == nil:
			checkAccepted(t, fx, raw, op)
		case errors.Is(err, ErrDuplicate):
			if op == nil || fx.set[op.ID] == nil {
				t.Fatal("duplicate of an op not in the set")
			}
		case errors.As(err, &missing):
			if len(missing.Missing) == 0 || missing.Op == nil {
				t.Fatal("missing deps without deps")
			}
			for _, id := range missing.Missing {
				if fx.set[id] != nil {
					t.Fatalf("dep %s reported missing but held", id)
				}
			}
		case errors.Is(err, ErrPendingRules):
			if op == nil || op.Ratify == nil || op.Ratify.Entry.Seq <= validateHorizon || fx.rules.IsValidator(op.Author) {
				t.Fatalf("pending rules for %+v", op)
			}
		case !errors.Is(err, ErrInvalidOp):
			t.Fatalf("error outside the documented outcomes: %v", err)
		}
	})
}

func checkAccepted(t *testing.T, fx *validateFixture, raw []byte, op *Op) {
	t.Helper()
	if op == nil {
		t.Fatal("accepted without an op")
	}
	if fx.set[op.ID] != nil {
		t.Fatal("an op in the set accepted as new")
	}
	if !bytes.Equal(op.Raw, raw) {
		t.Fatal("accepted op does not keep its bytes")
	}
	var w wireOp
	if err := decodeStrict(raw, &w); err != nil || opID(w.Op) != op.ID {
		t.Fatalf("accepted op's ID does not match its bytes (%v)", err)
	}
	key := fx.byID[op.Author]
	if key == nil {
		t.Fatalf("accepted an op of stranger %s", op.Author)
	}
	again, err := encodeOp(key, testNet, draftOf(op))
	if err != nil {
		t.Fatalf("accepted op does not re-encode: %v", err)
	}
	if !bytes.Equal(again.Raw, raw) || again.ID != op.ID {
		t.Fatalf("accepted op re-encodes to other bytes:\n%x\n%x", raw, again.Raw)
	}
	_, eligible := fx.rules.Reputation[op.Author]
	validator := fx.rules.IsValidator(op.Author)
	switch op.Kind {
	case KindProposal, KindReport:
		if !eligible && !validator {
			t.Fatalf("%s by %s accepted", op.Kind, op.Author)
		}
	case KindVote:
		if !eligible {
			t.Fatalf("vote by %s accepted", op.Author)
		}
	case KindRatify, KindAttest:
		if !validator {
			t.Fatalf("%s by non-validator %s accepted", op.Kind, op.Author)
		}
	default:
		t.Fatalf("kind %q accepted", op.Kind)
	}
	needsDep := op.Vote != nil || (op.Ratify != nil && !op.Ratify.Entry.Void)
	if !needsDep {
		if len(op.Deps) != 0 {
			t.Fatalf("%s with deps accepted", op.Kind)
		}
		return
	}
	if len(op.Deps) != 1 {
		t.Fatalf("%s with %d deps accepted", op.Kind, len(op.Deps))
	}
	dep := fx.set[op.Deps[0]]
	if dep == nil || dep.Kind != KindProposal {
		t.Fatalf("%s accepted with dep %s not a held proposal", op.Kind, op.Deps[0])
	}
	named := ""
	if op.Vote != nil {
		named = op.Vote.ProposalID
	} else {
		named = op.Ratify.Entry.ProposalID
		if err := matchesProposal(op.Ratify.Entry, dep.Proposal); err != nil {
			t.Fatalf("%s accepted for another package: %v", op.Kind, err)
		}
	}
	if named != proposalIDFor(dep) {
		t.Fatalf("%s names %s but depends on %s", op.Kind, named, proposalIDFor(dep))
	}
}
