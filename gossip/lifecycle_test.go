package gossip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// lifecycleFixture drives one honest validator through the life of
// upgrades while the test plays a leader that orders whatever it likes
// and three other validators that attest and ratify whatever it likes.
type lifecycleFixture struct {
	*endorseFixture
	propSeq, voteSeq uint64
	props            map[string]*Op // by proposal ID
}

func newLifecycleFixture(t *testing.T) *lifecycleFixture {
	f, _ := newEndorseFixture(t)
	return &lifecycleFixture{endorseFixture: f, props: map[string]*Op{}}
}

// propose publishes b from voter 0 with timestamp ts and has voters
// 0..3 of 6 approve it (early approval).
func (f *lifecycleFixture) propose(ts time.Time, b proposalBody) string {
	f.t.Helper()
	f.propSeq++
	op, err := encodeOp(f.voters[0], testNet, opDraft{Kind: KindProposal, Seq: 100 + f.propSeq, TS: ts, Body: b})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.v.svc.Ingest(op.Raw); err != nil {
		f.t.Fatalf("ingest proposal %+v: %v", b, err)
	}
	f.voteSeq++
	f.votes(op, ChoiceApproval, f.voteSeq, 0, 4)
	id := proposalIDFor(op)
	f.props[id] = op
	return id
}

// upgradeBody is a code upgrade of a package named by i.
func upgradeBody(i int, at int64) proposalBody {
	return proposalBody{Type: TypeCodeUpgrade, Title: "u", Version: "1.2.0", PackageURL: "ipfs://bafy" + string(rune('a'+i)),
		PackageHash: testBody(i).PackageHash, PackageSize: 100, ActivateAt: at}
}

// entry is the entry a slot would give at the next seq.
func (f *lifecycleFixture) entry(id string, action string, target uint64) execlog.Entry {
	f.t.Helper()
	p := f.props[id].Proposal
	seq := f.v.svc.NextSeq()
	prev := ""
	if seq > 1 {
		e, _ := f.v.svc.Final(seq - 1)
		prev = e.Hash()
	}
	e := execlog.Entry{Seq: seq, ProposalID: id, Version: p.Version, PackageURL: p.PackageURL, PackageHash: p.PackageHash,
		PackageSize: p.PackageSize, PrevEntryHash: prev, Action: action, Target: target}
	if action == "" {
		e.ActivateAt, e.ActivateAfter = p.ActivateAt, p.ActivateAfter
	}
	return e
}

func slotFor(e execlog.Entry) *Slot {
	return &Slot{ProposalID: e.ProposalID, Version: e.Version, PackageURL: e.PackageURL, PackageHash: e.PackageHash,
		PackageSize: e.PackageSize, Action: e.Action, Target: e.Target, ActivateAt: e.ActivateAt, ActivateAfter: e.ActivateAfter}
}

// finalize has the three other validators ratify e (3 of 4: final).
func (f *lifecycleFixture) finalize(e execlog.Entry) {
	f.t.Helper()
	for _, k := range f.others {
		f.opSeq++
		raw, err := SignEntryOp(k, testNet, KindRatify, e, f.props[e.ProposalID].ID, 1000+f.opSeq)
		if err != nil {
			f.t.Fatal(err)
		}
		if err := f.v.svc.Ingest(raw); err != nil {
			f.t.Fatal(err)
		}
	}
	if got, ok := f.v.svc.Final(e.Seq); !ok || got.Hash() != e.Hash() {
		f.t.Fatalf("entry %d not final: %+v", e.Seq, got)
	}
}

// refuses asserts the honest validator neither attests nor signs e, even
// when the three others attest it; want is in its reason.
func (f *lifecycleFixture) refuses(e execlog.Entry, want string) {
	f.t.Helper()
	f.attest(e, f.props[e.ProposalID], 3)
	p, err := f.v.svc.Endorse(context.Background(), e.Seq, slotFor(e), ready)
	if err != nil || p.Attested || p.Ratified != "" {
		f.t.Fatalf("endorsed %+v: %+v %v", e, p, err)
	}
	if why := p.Waiting + p.Unsignable; !strings.Contains(why, want) {
		f.t.Fatalf("refused %+v for %q, want %q", e, why, want)
	}
}

// attests asserts the honest validator attests e.
func (f *lifecycleFixture) attests(e execlog.Entry) {
	f.t.Helper()
	p, err := f.v.svc.Endorse(context.Background(), e.Seq, slotFor(e), ready)
	if err != nil || !p.Attested {
		f.t.Fatalf("did not attest %+v: %+v %v", e, p, err)
	}
}

func (f *lifecycleFixture) status(id string) string {
	f.t.Helper()
	v, err := f.v.svc.Proposal(id, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Status
}

// A dishonest leader and up to all other validators cannot make an
// honest validator activate an upgrade early, run a cancelled upgrade,
// let another upgrade jump a scheduled one, cancel what already ran, or
// roll back anything but the latest upgrade.
func TestLifecycleRulesAgainstByzantineLeader(t *testing.T) {
	f := newLifecycleFixture(t)
	now := time.Now()
	later := now.Add(time.Hour).Unix()

	// A is scheduled an hour ahead; its entry becomes final.
	a := f.propose(now, upgradeBody(0, later))
	ea := f.entry(a, "", 0)
	if !ea.Scheduled() {
		t.Fatalf("entry of a scheduled proposal: %+v", ea)
	}
	f.attests(ea)
	f.finalize(ea)
	if e, due, ok := f.v.svc.Schedule(); !ok || e.Seq != 1 || due.Unix() != later {
		t.Fatalf("schedule %+v %v %v", e, due, ok)
	}
	if s := f.status(a); s != StatusScheduled {
		t.Fatalf("A is %s", s)
	}

	// B, approved, may not jump the waiting schedule.
	b := f.propose(now, upgradeBody(1, 0))
	f.refuses(f.entry(b, "", 0), "only its activation or cancellation")
	// A's activation an hour early waits.
	f.refuses(f.entry(a, execlog.ActionActivate, 1), "activates in")
	// An activation of a different package under A's ID is forged.
	forged := f.entry(a, execlog.ActionActivate, 1)
	forged.PackageHash = testBody(5).PackageHash
	raw, err := SignEntryOp(f.others[0], testNet, KindAttest, forged, f.props[a].ID, 999)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.v.svc.Ingest(raw); !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("attest of a forged activation: %v", err)
	}
	if p, _ := f.v.svc.Endorse(context.Background(), 2, slotFor(forged), ready); p.Attested || !strings.Contains(p.Unsignable, "does not carry the package") {
		t.Fatalf("forged activation: %+v", p)
	}

	// A cancel of A is approved: it names entry 1 and goes first.
	c := f.propose(now, proposalBody{Type: TypeCancel, Title: "stop A", Target: a})
	f.refuses(f.entry(c, execlog.ActionCancel, 0), "only its activation or cancellation")
	ec := f.entry(c, execlog.ActionCancel, 1)
	f.attests(ec)
	f.finalize(ec)
	if s := f.status(a); s != StatusCancelled {
		t.Fatalf("A after its cancel is %s", s)
	}
	if _, _, ok := f.v.svc.Schedule(); ok {
		t.Fatal("a cancelled schedule still waits")
	}
	// A cancelled upgrade never runs: not activated, not as a new entry.
	f.refuses(f.entry(a, execlog.ActionActivate, 1), "not a waiting schedule")
	f.refuses(f.entry(a, "", 0), "already entry 1")

	// B runs now (entry 3).
	eb := f.entry(b, "", 0)
	f.attests(eb)
	f.finalize(eb)
	// Cancelling B is too late.
	late := f.propose(now, proposalBody{Type: TypeCancel, Title: "stop B", Target: b})
	if s := f.status(late); s != StatusTooLate {
		t.Fatalf("late cancel is %s", s)
	}
	f.refuses(f.entry(late, execlog.ActionCancel, 0), "too late")

	// D runs (entry 4). Rolling back B is refused: only the latest.
	d := f.propose(now, upgradeBody(2, 0))
	ed := f.entry(d, "", 0)
	f.attests(ed)
	f.finalize(ed)
	rb := f.propose(now, proposalBody{Type: TypeRollback, Title: "undo B", Target: b, Version: "1.4.0"})
	f.refuses(f.entry(rb, execlog.ActionRollback, 3), "only the latest upgrade")
	rd := f.propose(now, proposalBody{Type: TypeRollback, Title: "undo D", Target: d, Version: "1.4.0"})
	f.refuses(f.entry(rd, execlog.ActionRollback, 3), "did not run at entry 3")
	f.attests(f.entry(rd, execlog.ActionRollback, 4))
}

// A cancel approved before its upgrade got an entry keeps the upgrade
// out of the log; a scheduled upgrade whose time came is activated.
func TestLifecycleCancelBeforeOrderAndActivation(t *testing.T) {
	f := newLifecycleFixture(t)
	now := time.Now()
	a := f.propose(now, upgradeBody(0, 0))
	c := f.propose(now, proposalBody{Type: TypeCancel, Title: "not A", Target: a})
	f.refuses(f.entry(a, "", 0), "a cancel of proposal")
	ec := f.entry(c, execlog.ActionCancel, 0)
	f.attests(ec)
	f.finalize(ec)
	if s := f.status(a); s != StatusCancelled {
		t.Fatalf("A is %s", s)
	}
	f.refuses(f.entry(a, "", 0), "was cancelled by entry 1")

	// S was proposed ten minutes ago to activate five minutes ago: its
	// activation is due as soon as its entry is final.
	past := now.Add(-10 * time.Minute)
	s := f.propose(past, upgradeBody(1, now.Add(-5*time.Minute).Unix()))
	es := f.entry(s, "", 0)
	f.attests(es)
	f.finalize(es)
	ea := f.entry(s, execlog.ActionActivate, 2)
	f.attests(ea)
	f.finalize(ea)
	if st := f.status(s); st != StatusRatified {
		t.Fatalf("activated S is %s", st)
	}
	if v, _ := f.v.svc.Proposal(s, now); v.RunSeq != 3 {
		t.Fatalf("S ran at %d", v.RunSeq)
	}
}

// Proposals of the life cycle are checked when published and ingested.
func TestLifecycleProposalChecks(t *testing.T) {
	f := newLifecycleFixture(t)
	now := time.Now()
	a := f.propose(now, upgradeBody(0, 0))
	for name, b := range map[string]proposalBody{
		"cancel without target":   {Type: TypeCancel, Title: "x"},
		"cancel by alias":         {Type: TypeCancel, Title: "x", Target: a[:len(a)-8]},
		"cancel with package":     {Type: TypeCancel, Title: "x", Target: a, PackageURL: "https://x", PackageHash: testBody(0).PackageHash, PackageSize: 1},
		"cancel with version":     {Type: TypeCancel, Title: "x", Target: a, Version: "1.0.0"},
		"rollback without vers":   {Type: TypeRollback, Title: "x", Target: a},
		"scheduled rollback":      {Type: TypeRollback, Title: "x", Target: a, Version: "2.0.0", ActivateAfter: 60},
		"both schedules":          {Type: TypeCodeUpgrade, Title: "x", Version: "1.0.0", PackageURL: "https://x", PackageHash: testBody(0).PackageHash, PackageSize: 1, ActivateAt: now.Unix() + 60, ActivateAfter: 60},
		"activate after too late": {Type: TypeCodeUpgrade, Title: "x", Version: "1.0.0", PackageURL: "https://x", PackageHash: testBody(0).PackageHash, PackageSize: 1, ActivateAfter: MaxActivationDelay + 1},
		"activate at too late":    {Type: TypeCodeUpgrade, Title: "x", Version: "1.0.0", PackageURL: "https://x", PackageHash: testBody(0).PackageHash, PackageSize: 1, ActivateAt: now.Unix() + MaxActivationDelay + 3600},
		"upgrade with target":     {Type: TypeCodeUpgrade, Title: "x", Version: "1.0.0", PackageURL: "https://x", PackageHash: testBody(0).PackageHash, PackageSize: 1, Target: a},
		"unknown type":            {Type: "teleport", Title: "x", Target: a},
	} {
		t.Run(name, func(t *testing.T) {
			f.propSeq++
			op, err := encodeOp(f.voters[1], testNet, opDraft{Kind: KindProposal, Seq: 100 + f.propSeq, TS: now, Body: b})
			if err == nil {
				err = f.v.svc.Ingest(op.Raw)
			}
			if err == nil {
				t.Error("accepted")
			}
		})
	}
}
