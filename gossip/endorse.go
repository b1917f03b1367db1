package gossip

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// A validator's part in deciding entry seq (docs/threat-model.md):
//
//  1. attest: it gossips a transient, non-binding attest op for the entry
//     its raft FSM put at seq, once the entry passes its own checks (the
//     proposal exists in its op set, carries the entry's package, is
//     approved by its own tally under the rules in force for seq, voting
//     period included, and is not final at an earlier seq) and the node
//     holds the verified package and dry-ran it (prepare);
//  2. ratify: it signs — once per seq, ever (signing record) — an entry
//     that more than the finality threshold of the validators in force
//     attest, after the same checks (its own approval may be excused only
//     if it attested that entry itself).
//
// Honest validators attest one entry per seq, so two entries cannot both
// gather a quorum of attests; a raft leader that feeds followers different
// entries therefore gets no entry signed at all, and the seq can be voided
// without risk. The ratify ops are what makes an entry final.

// attestWindow bounds the seqs (after the first non-final one) for which
// attest ops are kept.
const attestWindow = 16

// attestRepublish is how often an unchanged attest is sent again while its
// seq is not final (attests are not synced, so late peers need a repeat).
const attestRepublish = 3 * time.Second

// Slot is what the validators' raft ordered at a seq: a proposal's
// package, or a void.
type Slot struct {
	Void          bool
	ProposalID    string
	Version       string
	PackageURL    string
	PackageHash   string
	PackageSize   int64
	Action        string
	Target        uint64
	ActivateAt    int64
	ActivateAfter int64
}

// entry builds the execution-log entry of the slot at seq after prev.
func (sl Slot) entry(seq uint64, prev string) execlog.Entry {
	if sl.Void {
		return VoidEntryAt(seq, prev)
	}
	return execlog.Entry{Seq: seq, ProposalID: sl.ProposalID, Version: sl.Version, PackageURL: sl.PackageURL,
		PackageHash: sl.PackageHash, PackageSize: sl.PackageSize, PrevEntryHash: prev,
		Action: sl.Action, Target: sl.Target, ActivateAt: sl.ActivateAt, ActivateAfter: sl.ActivateAfter}
}

// VoidEntryAt is the void entry at seq after the entry with hash prev.
func VoidEntryAt(seq uint64, prev string) execlog.Entry {
	return execlog.Entry{Seq: seq, PrevEntryHash: prev, Void: true}
}

// Readiness says whether this node holds the verified package of an entry
// and has dry-run it to a deterministic outcome on the state the entry
// will run on.
type Readiness struct {
	Ready      bool
	PackageCID string // where this node serves the package ("" if nowhere)
	Reason     string // why not ready
	// Pending: the fetch and dry run are still running (not a failure).
	Pending bool
}

// Progress is what Endorse saw and did for one seq.
type Progress struct {
	Seq   uint64
	Final bool
	// Entry is the entry built from the slot (zero when no slot).
	Entry execlog.Entry
	// Waiting says what this validator waits for before it can attest
	// (a lagging view, a package still downloading, an open vote).
	Waiting string
	// Unsignable says why this validator will not attest the slot's entry
	// as things stand (not its proposal's package, rejected, already
	// executed): the leader that ordered it should void the seq.
	Unsignable string
	// Attested: this validator attests the slot's entry.
	Attested bool
	// Preparing: this validator is still fetching or dry-running the
	// package of the slot's entry, or its executor is still running the
	// entries before it (the leader does not count a stall meanwhile).
	Preparing bool
	// Ratified is the entry hash this validator signed at seq ("" none).
	Ratified string
	// Quorum is the hash of an entry attested by a finality quorum ("" none).
	Quorum string
	// Signatures counts ratify signatures per entry hash from validators in
	// force that did not equivocate.
	Signatures map[string]int
	// Needed is the finality quorum for seq.
	Needed int
}

type attestRecord struct {
	hash string
	at   time.Time
}

// endorseState is this validator's memory of what it attested.
type endorseState struct {
	lastAttestSeq uint64
	mine          map[uint64]attestRecord    // seq -> latest own attest
	attested      map[uint64]map[string]bool // seq -> every hash attested here
}

func newEndorseState() endorseState {
	return endorseState{mine: map[uint64]attestRecord{}, attested: map[uint64]map[string]bool{}}
}

// verdict of this node's checks on an entry.
type verdict int

const (
	verdictOK          verdict = iota
	verdictWaiting             // not yet: the view may still change
	verdictUnsignable          // never, as things stand
	verdictDisapproved         // its tally does not approve (may change with votes)
)

// judge applies this validator's checks to e under the rules r in force
// for e.Seq.
func (s *Service) judgeLocked(e execlog.Entry, r genesis.Rules, now time.Time) (verdict, string) {
	if e.Void {
		return verdictOK, ""
	}
	ps := s.st.proposals[e.ProposalID]
	if ps == nil {
		return verdictWaiting, fmt.Sprintf("proposal %s is not in this node's op set", e.ProposalID)
	}
	if err := matchesProposal(e, ps.op.Proposal); err != nil {
		return verdictUnsignable, err.Error()
	}
	for _, f := range s.finalLog {
		if f.ProposalID == e.ProposalID && f.Action == e.Action && f.Seq < e.Seq {
			return verdictUnsignable, fmt.Sprintf("proposal %s is already entry %d", e.ProposalID, f.Seq)
		}
	}
	if v, why := s.judgeLifecycleLocked(e, now); v != verdictOK {
		return v, why
	}
	if e.Action == execlog.ActionActivate {
		return verdictOK, "" // approved when it was scheduled; its time is checked above
	}
	v := s.st.proposalView(ps, r, nil, now)
	switch v.Status {
	case StatusApproved:
		return verdictOK, ""
	case StatusVoting:
		return verdictWaiting, fmt.Sprintf("proposal %s is still voting here (approval %.3f of %.3f)", e.ProposalID, v.Tally.Approval, v.Tally.Eligible)
	}
	return verdictDisapproved, fmt.Sprintf("proposal %s is %s by this node's own tally (approval %.3f, rejection %.3f, eligible %.3f)",
		e.ProposalID, v.Status, v.Tally.Approval, v.Tally.Rejection, v.Tally.Eligible)
}

// Endorse does this validator's part for entry seq, given the slot its
// raft FSM holds at seq (nil when it has none yet): attest the slot's
// entry when it passes this node's checks and prepare reports the package
// ready, and sign an entry that a finality quorum attests. It is
// idempotent; call it whenever something changed and periodically until
// Progress.Final. prepare is called only for entries that passed the
// checks; a void entry needs no package.
//
// Errors: ErrNotValidator when this node is not a validator for seq,
// ErrDoubleSign (should never happen), publishing errors.
func (s *Service) Endorse(ctx context.Context, seq uint64, slot *Slot, prepare func(context.Context, execlog.Entry) Readiness) (Progress, error) {
	p := Progress{Seq: seq}
	if seq == 0 {
		return p, fmt.Errorf("%w: seq 0", ErrInvalidOp)
	}
	r, known := s.rulesFor(seq)
	if !known {
		p.Waiting = fmt.Sprintf("entry %d has not executed here, so the rules of entry %d are unknown", seq-1, seq)
		p.Preparing = true // catching up is not a stall
		return p, nil
	}
	if !r.IsValidator(s.self) {
		return p, fmt.Errorf("%w for entry %d", ErrNotValidator, seq)
	}
	p.Needed = r.Governance.FinalityNeeded(len(r.Validators))
	now := s.now()
	s.mu.RLock()
	final := uint64(len(s.finalLog))
	prev := ""
	if seq >= 2 && final >= seq-1 {
		prev = s.finalLog[seq-2].Hash()
	}
	s.mu.RUnlock()
	if final >= seq {
		p.Final = true
		return p, nil
	}
	if final < seq-1 {
		p.Waiting = fmt.Sprintf("entry %d is not final yet", seq-1)
		return p, nil
	}
	ready := map[string]Readiness{}
	readiness := func(e execlog.Entry) Readiness {
		if e.Void || e.Action == execlog.ActionCancel {
			return Readiness{Ready: true} // nothing to run
		}
		h := e.Hash()
		if rd, ok := ready[h]; ok {
			return rd
		}
		rd := prepare(ctx, e)
		ready[h] = rd
		return rd
	}

	// 1. Attest the slot's entry.
	if slot != nil {
		e := slot.entry(seq, prev)
		p.Entry = e
		s.mu.RLock()
		v, why := s.judgeLocked(e, r, now)
		s.mu.RUnlock()
		switch v {
		case verdictOK:
			if rd := readiness(e); rd.Ready {
				if err := s.maybeAttest(ctx, e, rd.PackageCID, now); err != nil {
					return p, err
				}
				p.Attested = true
			} else {
				p.Waiting = "package not ready: " + rd.Reason
				p.Preparing = rd.Pending
			}
		case verdictWaiting:
			p.Waiting = why
		default:
			p.Unsignable = why
		}
	}

	// 2. Sign a quorum-attested entry.
	s.mu.RLock()
	attested := map[string]int{}
	entries := map[string]execlog.Entry{}
	for _, v := range r.Validators {
		if op := s.attests[seq][v]; op != nil {
			attested[op.Ratify.EntryHash]++
			entries[op.Ratify.EntryHash] = op.Ratify.Entry
		}
	}
	p.Signatures = map[string]int{}
	for _, v := range r.Validators {
		if h, eq := s.st.signature(seq, v); h != "" && !eq {
			p.Signatures[h]++
			if _, ok := entries[h]; !ok {
				entries[h], _ = s.st.entryAt(seq, h)
			}
		}
	}
	rec, recorded := s.st.signed[seq]
	var quorum []string
	for h, n := range attested {
		if n >= p.Needed {
			quorum = append(quorum, h)
		}
	}
	sort.Strings(quorum)
	s.mu.RUnlock()
	if len(quorum) > 0 {
		p.Quorum = quorum[0]
	}
	if recorded {
		p.Ratified = rec
		if e, ok := entries[rec]; ok {
			// Republish if the op was lost (crash between record and
			// publish); sign is a no-op when the op is in the set.
			return p, s.sign(ctx, e, readiness(e).PackageCID)
		}
		return p, nil
	}
	for _, h := range quorum {
		y := entries[h]
		if y.PrevEntryHash != prev {
			continue
		}
		s.mu.RLock()
		v, why := s.judgeLocked(y, r, now)
		mine := s.endorse.attested[seq][h]
		s.mu.RUnlock()
		if v == verdictUnsignable || v == verdictWaiting || (v == verdictDisapproved && !mine) {
			if p.Waiting == "" && p.Unsignable == "" {
				p.Waiting = "quorum-attested entry " + h[:12] + ": " + why
			}
			continue
		}
		rd := readiness(y)
		if !rd.Ready {
			p.Waiting = "package of quorum-attested entry not ready: " + rd.Reason
			continue
		}
		if err := s.sign(ctx, y, rd.PackageCID); err != nil {
			return p, err
		}
		p.Ratified = h
		return p, nil
	}
	return p, nil
}

// maybeAttest publishes an attest op for e unless this validator's latest
// attest at e.Seq is the same entry and recent.
func (s *Service) maybeAttest(ctx context.Context, e execlog.Entry, cid string, now time.Time) error {
	h := e.Hash()
	s.mu.Lock()
	last, ok := s.endorse.mine[e.Seq]
	s.mu.Unlock()
	if ok && last.hash == h && now.Sub(last.at) < attestRepublish {
		return nil
	}
	if err := s.attest(ctx, e, cid); err != nil {
		return err
	}
	s.mu.Lock()
	s.endorse.mine[e.Seq] = attestRecord{hash: h, at: now}
	if s.endorse.attested[e.Seq] == nil {
		s.endorse.attested[e.Seq] = map[string]bool{}
	}
	s.endorse.attested[e.Seq][h] = true
	for seq := range s.endorse.mine {
		if seq+attestWindow < e.Seq {
			delete(s.endorse.mine, seq)
			delete(s.endorse.attested, seq)
		}
	}
	s.mu.Unlock()
	return nil
}

// noteAttest keeps a validator's latest attest per seq for the seqs being
// decided.
func (s *Service) noteAttest(op *Op) {
	seq := op.Ratify.Entry.Seq
	s.mu.Lock()
	next := uint64(len(s.finalLog)) + 1
	if seq < next || seq > next+attestWindow {
		s.mu.Unlock()
		return
	}
	m := s.attests[seq]
	if m == nil {
		m = map[peer.ID]*Op{}
		s.attests[seq] = m
	}
	cur := m[op.Author]
	if cur != nil && cur.Seq >= op.Seq {
		s.mu.Unlock()
		return
	}
	changed := cur == nil || cur.Ratify.EntryHash != op.Ratify.EntryHash
	m[op.Author] = op
	s.mu.Unlock()
	if changed {
		s.emit(Event{Kind: AttestAdded, Seq: seq, ProposalID: op.Ratify.Entry.ProposalID})
	}
}

// Attests returns, for entry seq, each validator's latest attested entry
// hash (for the API and tests).
func (s *Service) Attests(seq uint64) map[peer.ID]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[peer.ID]string{}
	for v, op := range s.attests[seq] {
		out[v] = op.Ratify.EntryHash
	}
	return out
}

// PackageCIDs lists the CIDs under which validators that signed entry seq
// with hash entryHash say they hold its package, sorted and distinct.
func (s *Service) PackageCIDs(seq uint64, entryHash string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, ops := range s.st.ratifies[seq] {
		for _, op := range ops {
			if c := op.Ratify.PackageCID; c != "" && op.Ratify.EntryHash == entryHash && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// AttestCIDs lists the CIDs under which validators attesting entry seq
// with hash entryHash say they hold its package, sorted and distinct.
func (s *Service) AttestCIDs(seq uint64, entryHash string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, op := range s.attests[seq] {
		if c := op.Ratify.PackageCID; c != "" && op.Ratify.EntryHash == entryHash && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// NextSeq is the first execution-log seq that is not final on this node.
func (s *Service) NextSeq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return uint64(len(s.finalLog)) + 1
}

// Final returns the final entry at seq, if any.
func (s *Service) Final(seq uint64) (execlog.Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if seq == 0 || seq > uint64(len(s.finalLog)) {
		return execlog.Entry{}, false
	}
	return s.finalLog[seq-1], true
}
