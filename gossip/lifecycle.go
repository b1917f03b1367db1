package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-datastore"

	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// The life of an upgrade (docs/governance.md): a code upgrade runs when
// its entry is executed — or, scheduled (activate_at / activate_after),
// its entry only prepares it and a later activate entry runs it. While a
// scheduled entry waits, the next entry of the log can only be its
// activation or its cancellation (or a void). A cancel proposal cancels
// an approved upgrade before it gets an entry, or a scheduled one before
// it activates; one that comes too late fails. A rollback proposal
// restores the state from before the latest executed upgrade.

// Proposal statuses of the life cycle, beside those of views.go.
const (
	// StatusScheduled: the upgrade's entry is final; it waits for its time.
	StatusScheduled = "scheduled"
	// StatusCancelled: a final cancel entry cancelled the upgrade.
	StatusCancelled = "cancelled"
	// StatusTooLate: a cancel whose upgrade already ran (or was cancelled).
	StatusTooLate = "too_late"
)

// finalAtPrefix holds when each entry became final on this node (local
// time, unix nanoseconds): activate_after counts from it.
var finalAtPrefix = datastore.NewKey("/finalat")

// logFacts are what the final log says about the life of upgrades.
type logFacts struct {
	// pending is the scheduled entry that awaits its activation or
	// cancellation (nil when none).
	pending *execlog.Entry
	// ran maps a code upgrade to the seq of the entry that ran it.
	ran map[string]uint64
	// scheduled maps a code upgrade to the seq of its scheduled entry.
	scheduled map[string]uint64
	// cancelled maps a code upgrade to the seq of the cancel entry.
	cancelled map[string]uint64
	// lastRun is the seq of the last entry that ran a package or rolled
	// one back (0: none).
	lastRun uint64
}

// factsLocked analyses the final log.
func (s *Service) factsLocked() logFacts {
	f := logFacts{ran: map[string]uint64{}, scheduled: map[string]uint64{}, cancelled: map[string]uint64{}}
	for i := range s.finalLog {
		e := s.finalLog[i]
		switch {
		case e.Void:
			continue
		case e.Scheduled():
			f.scheduled[e.ProposalID] = e.Seq
			f.pending = &s.finalLog[i]
			continue
		case e.Action == "" || e.Action == execlog.ActionActivate:
			f.ran[e.ProposalID] = e.Seq
			f.lastRun = e.Seq
		case e.Action == execlog.ActionRollback:
			f.lastRun = e.Seq
		case e.Action == execlog.ActionCancel:
			if ps := s.st.proposals[e.ProposalID]; ps != nil {
				f.cancelled[ps.op.Proposal.Target] = e.Seq
			}
		}
		f.pending = nil
	}
	return f
}

// approvedCancelLocked reports whether some cancel proposal that this
// node's tally approves names target.
func (s *Service) approvedCancelLocked(target string, now time.Time) bool {
	rules := s.deps.Rules()
	for _, ps := range s.st.proposals {
		if p := ps.op.Proposal; p.Type == TypeCancel && p.Target == target {
			if v := s.st.proposalView(ps, rules, nil, now); v.Status == StatusApproved {
				return true
			}
		}
	}
	return false
}

// dueLocked is when the scheduled entry e activates on this node: its
// activate_at, or activate_after seconds after it became final here.
func (s *Service) dueLocked(e execlog.Entry) time.Time {
	if e.ActivateAt != 0 {
		return time.Unix(e.ActivateAt, 0)
	}
	at, ok := s.finalAt[e.Seq]
	if !ok {
		at = s.now()
	}
	return at.Add(time.Duration(e.ActivateAfter) * time.Second)
}

// Schedule returns the scheduled entry that waits for its activation or
// cancellation, and when it is due on this node.
func (s *Service) Schedule() (execlog.Entry, time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := s.factsLocked()
	if f.pending == nil {
		return execlog.Entry{}, time.Time{}, false
	}
	return *f.pending, s.dueLocked(*f.pending), true
}

// FinalAt is when entry seq became final on this node (zero if unknown).
func (s *Service) FinalAt(seq uint64) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.finalAt[seq]
}

// judgeLifecycleLocked applies the life-cycle rules to entry e (seq after
// the final log): what may follow a scheduled entry, what a cancel or an
// activate needs, and that a cancelled upgrade never runs.
func (s *Service) judgeLifecycleLocked(e execlog.Entry, now time.Time) (verdict, string) {
	if e.Void {
		return verdictOK, ""
	}
	f := s.factsLocked()
	if p := f.pending; p != nil && !((e.Action == execlog.ActionActivate || e.Action == execlog.ActionCancel) && e.Target == p.Seq) {
		return verdictUnsignable, fmt.Sprintf("entry %d is scheduled: only its activation or cancellation may follow it", p.Seq)
	}
	switch e.Action {
	case "":
		if seq, ok := f.cancelled[e.ProposalID]; ok {
			return verdictUnsignable, fmt.Sprintf("proposal %s was cancelled by entry %d", e.ProposalID, seq)
		}
		if s.approvedCancelLocked(e.ProposalID, now) {
			return verdictUnsignable, fmt.Sprintf("a cancel of proposal %s is approved", e.ProposalID)
		}
	case execlog.ActionActivate:
		p := f.pending
		if p == nil || p.ProposalID != e.ProposalID || p.Version != e.Version || p.PackageHash != e.PackageHash ||
			p.PackageURL != e.PackageURL || p.PackageSize != e.PackageSize {
			return verdictUnsignable, fmt.Sprintf("entry %d is not a waiting schedule of proposal %s", e.Target, e.ProposalID)
		}
		if s.approvedCancelLocked(e.ProposalID, now) {
			return verdictWaiting, fmt.Sprintf("a cancel of proposal %s is approved: it goes first", e.ProposalID)
		}
		if due := s.dueLocked(*p); now.Before(due) {
			return verdictWaiting, fmt.Sprintf("proposal %s activates in %s", e.ProposalID, due.Sub(now).Round(time.Second))
		}
	case execlog.ActionCancel:
		target := s.st.proposals[e.ProposalID].op.Proposal.Target
		if seq, ok := f.ran[target]; ok {
			return verdictUnsignable, fmt.Sprintf("too late: proposal %s already ran in entry %d", target, seq)
		}
		if seq, ok := f.cancelled[target]; ok {
			return verdictUnsignable, fmt.Sprintf("proposal %s was already cancelled by entry %d", target, seq)
		}
		want := f.scheduled[target] // 0: the target has no entry yet
		if e.Target != want {
			return verdictUnsignable, fmt.Sprintf("the cancel names entry %d, proposal %s is at %d", e.Target, target, want)
		}
	case execlog.ActionRollback:
		target := s.st.proposals[e.ProposalID].op.Proposal.Target
		if seq, ok := f.ran[target]; !ok || seq != e.Target {
			return verdictUnsignable, fmt.Sprintf("proposal %s did not run at entry %d", target, e.Target)
		}
		if last := f.lastRun; last != e.Target {
			return verdictUnsignable, fmt.Sprintf("only the latest upgrade (entry %d) can be rolled back", last)
		}
	}
	return verdictOK, ""
}

// persistFinalAt records when entry seq became final here.
func (st *store) persistFinalAt(ctx context.Context, seq uint64, at time.Time) error {
	b := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	return st.ds.Put(ctx, seqKey(finalAtPrefix, seq), b)
}

// Lifecycle is what the final log says about the life of upgrades, for
// the raft leader's ordering and the API.
type Lifecycle struct {
	// Pending is the scheduled entry that waits (nil when none) and Due
	// when it activates on this node.
	Pending *execlog.Entry
	Due     time.Time
	// Ran maps a code upgrade to the seq of the entry that ran it;
	// Scheduled to its scheduled entry; Cancelled to its cancel entry.
	Ran, Scheduled, Cancelled map[string]uint64
	// LastRun is the seq of the last entry that ran a package or rolled
	// one back (what a rollback may target).
	LastRun uint64
}

// Lifecycle analyses the final log.
func (s *Service) Lifecycle() Lifecycle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := s.factsLocked()
	l := Lifecycle{Ran: f.ran, Scheduled: f.scheduled, Cancelled: f.cancelled, LastRun: f.lastRun}
	if f.pending != nil {
		e := *f.pending
		l.Pending, l.Due = &e, s.dueLocked(e)
	}
	return l
}

// CancelApproved reports whether a cancel proposal of target is approved
// by this node's tally.
func (s *Service) CancelApproved(target string, now time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.approvedCancelLocked(target, now)
}

// lifecycleStatus refines a proposal's status with the final log: a
// scheduled or cancelled upgrade, a cancel that came too late.
func (f logFacts) status(v *ProposalView) {
	switch v.Body.Type {
	case TypeCodeUpgrade:
		v.RunSeq = f.ran[v.ID]
		if _, ok := f.cancelled[v.ID]; ok {
			v.Status = StatusCancelled
		} else if _, ok := f.ran[v.ID]; !ok && f.scheduled[v.ID] != 0 {
			v.Status = StatusScheduled
		}
	case TypeCancel:
		if v.Seq != 0 {
			return // its entry is final: it did cancel
		}
		if _, ok := f.ran[v.Body.Target]; ok {
			v.Status = StatusTooLate
		} else if _, ok := f.cancelled[v.Body.Target]; ok {
			v.Status = StatusTooLate
		}
	}
}
