package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// RetryInterval is how often the executor wakes without an event. An
// entry that failed transiently is retried with exponential backoff from
// retryMin to retryMax. New final entries run as soon as gossip reports
// them.
const RetryInterval = 3 * time.Second

const (
	retryMin = 1 * time.Second
	retryMax = 1 * time.Minute
)

// Stuck describes the entry the executor cannot get past (transient
// failures: a package it cannot fetch, a sandbox that crashes).
type Stuck struct {
	Seq       uint64    `json:"seq"`
	Proposal  string    `json:"proposal_id,omitempty"`
	Since     time.Time `json:"since"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	NextTry   time.Time `json:"next_try"`
}

// execState is the executor loop's memory of transient failures.
type execState struct {
	mu    sync.Mutex
	stuck *Stuck
	// halted is the reason the executor halted on a conflicting log ("").
	halted string
}

// runExecutor executes final execution-log entries strictly in seq order.
// It wakes on every gossip change, on Kick and every RetryInterval.
func (n *Node) runExecutor(ctx context.Context) {
	defer close(n.execDone)
	events, cancel := n.gossip.Subscribe()
	defer cancel()
	t := time.NewTicker(RetryInterval)
	defer t.Stop()
	n.reportLast(ctx)
	for {
		n.executeFinal(ctx)
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-n.kick:
		case <-t.C:
		}
	}
}

// Kick makes the executor look for work now (and retry a stuck entry).
func (n *Node) Kick() {
	n.exec.mu.Lock()
	if n.exec.stuck != nil {
		n.exec.stuck.NextTry = time.Time{}
	}
	n.exec.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// StuckEntry reports the entry the executor keeps failing on, if any.
func (n *Node) StuckEntry() (Stuck, bool) {
	n.exec.mu.Lock()
	defer n.exec.mu.Unlock()
	if n.exec.stuck == nil {
		return Stuck{}, false
	}
	return *n.exec.stuck, true
}

// executeFinal checks that the log still agrees with what this node ran,
// then runs every final entry after the last executed one, in order,
// stopping at the first transient failure or when paused.
func (n *Node) executeFinal(ctx context.Context) {
	log := n.gossip.ExecutionLog()
	if n.checkConflict(log) {
		return
	}
	for _, e := range log {
		if ctx.Err() != nil {
			return
		}
		last := n.upgrades.LastExecutedSeq()
		if e.Seq <= last {
			continue
		}
		if e.Seq != last+1 {
			return // the log is dense; a gap means it is still arriving
		}
		if !n.dueForRetry(e.Seq) {
			return
		}
		var res upgrade.Result
		var err error
		if e.Void {
			res, err = n.upgrades.Void(ctx, e.Seq, e.Hash())
		} else {
			res, err = n.upgrades.Execute(ctx, n.upgradeEntry(e))
		}
		switch {
		case errors.Is(err, upgrade.ErrPaused):
			return
		case err != nil:
			if ctx.Err() == nil {
				n.metrics.executions.WithLabelValues("transient").Inc()
				s := n.noteTransient(e, err)
				n.log.Warn("execution deferred; will retry", "seq", e.Seq, "proposal", e.ProposalID,
					"attempt", s.Attempts, "next_try", s.NextTry.Sub(time.Now()).Round(time.Second), "err", err)
			}
			return
		}
		n.clearStuck()
		switch {
		case e.Void:
			n.metrics.executions.WithLabelValues("void").Inc()
			n.log.Info("void entry", "seq", e.Seq)
			res.ErrorClass = "voided"
			res.Success = false
		case res.Success:
			n.metrics.executions.WithLabelValues("success").Inc()
			n.log.Info("upgrade executed", "seq", e.Seq, "proposal", e.ProposalID, "version", res.Version, "state", res.PostStateSHA256, "took", res.Duration)
		default:
			n.metrics.executions.WithLabelValues("failure").Inc()
			n.log.Warn("upgrade failed; state unchanged", "seq", e.Seq, "proposal", e.ProposalID, "class", res.ErrorClass, "err", res.Error)
		}
		n.afterEntry(ctx)
		n.publishReport(ctx, e, res)
	}
}

// afterEntry re-reads the rules from the new state, records them as the
// rules in force for the next entry, and lets gossip and raft follow.
func (n *Node) afterEntry(ctx context.Context) {
	if err := n.refreshRules(); err != nil {
		// The executor validated the rules before committing, so this is
		// a bug; keep the previous rules.
		n.log.Error("rules unreadable after upgrade", "err", err)
	}
	if err := n.recordRules(ctx); err != nil {
		n.log.Error("record rules", "err", err)
	}
	n.gossip.Refresh()
	n.raft.ReconcileMembership()
	n.applyServeRate()
}

// checkConflict halts the executor when the final entry at a seq it
// already executed is not the entry it executed (which needs more than f
// byzantine validators): it never runs on from a state the network does
// not share. It reports whether the executor is halted.
func (n *Node) checkConflict(log []gossip.Entry) bool {
	n.exec.mu.Lock()
	halted := n.exec.halted
	n.exec.mu.Unlock()
	if halted != "" {
		return true
	}
	for _, h := range n.upgrades.History() {
		if (h.Event != upgrade.EventUpgrade && h.Event != upgrade.EventVoid) || h.EntryHash == "" || h.Seq == 0 || h.Seq > uint64(len(log)) {
			continue
		}
		if got := log[h.Seq-1].Hash(); got != h.EntryHash {
			reason := fmt.Sprintf("conflicting execution log: this node executed entry %s at seq %d, but entry %s is final there", h.EntryHash, h.Seq, got)
			n.exec.mu.Lock()
			n.exec.halted = reason
			n.exec.mu.Unlock()
			n.metrics.conflict.Set(1)
			n.log.Error("EXECUTION LOG CONFLICT: executor halted", "seq", h.Seq, "executed", h.EntryHash, "final", got)
			if err := n.upgrades.Halt(reason); err != nil {
				n.log.Error("halt", "err", err)
			}
			return true
		}
	}
	return false
}

// dueForRetry reports whether entry seq may be tried now (backoff after
// transient failures).
func (n *Node) dueForRetry(seq uint64) bool {
	n.exec.mu.Lock()
	defer n.exec.mu.Unlock()
	s := n.exec.stuck
	return s == nil || s.Seq != seq || !time.Now().Before(s.NextTry)
}

func (n *Node) noteTransient(e gossip.Entry, err error) Stuck {
	n.exec.mu.Lock()
	defer n.exec.mu.Unlock()
	now := time.Now()
	s := n.exec.stuck
	if s == nil || s.Seq != e.Seq {
		s = &Stuck{Seq: e.Seq, Proposal: e.ProposalID, Since: now}
		n.exec.stuck = s
	}
	s.Attempts++
	s.LastError = err.Error()
	delay := retryMin << min(s.Attempts-1, 10)
	s.NextTry = now.Add(min(delay, retryMax))
	n.metrics.stuckSeq.Set(float64(e.Seq))
	return *s
}

func (n *Node) clearStuck() {
	n.exec.mu.Lock()
	n.exec.stuck = nil
	n.exec.mu.Unlock()
	n.metrics.stuckSeq.Set(0)
}

func (n *Node) publishReport(ctx context.Context, e gossip.Entry, res upgrade.Result) {
	rep := gossip.Report{
		Seq:             e.Seq,
		EntryHash:       e.Hash(),
		ProposalID:      e.ProposalID,
		Success:         res.Success,
		Version:         res.Version,
		PostStateSHA256: res.PostStateSHA256,
		ErrorClass:      res.ErrorClass,
	}
	if err := n.gossip.PublishReport(ctx, rep); err != nil && ctx.Err() == nil {
		n.log.Warn("publish report", "seq", e.Seq, "err", err)
	}
}

// reportLast republishes the report of the last executed entry after a
// restart, in case the node stopped between committing and reporting.
// Reports are idempotent in the op set.
func (n *Node) reportLast(ctx context.Context) {
	last := n.upgrades.LastExecutedSeq()
	if last == 0 {
		return
	}
	for _, e := range n.gossip.ExecutionLog() {
		if e.Seq != last {
			continue
		}
		for _, h := range n.upgrades.History() {
			switch {
			case h.Seq == last && h.Event == upgrade.EventUpgrade:
				n.publishReport(ctx, e, upgrade.Result{
					Seq: h.Seq, ProposalID: h.ProposalID, Success: h.Success,
					Version: h.Version, PostStateSHA256: h.PostStateSHA256, ErrorClass: h.ErrorClass,
				})
			case h.Seq == last && h.Event == upgrade.EventVoid:
				n.publishReport(ctx, e, upgrade.Result{Seq: h.Seq, Version: h.Version,
					PostStateSHA256: h.PostStateSHA256, ErrorClass: "voided"})
			}
		}
	}
}

// upgradeEntry turns a final entry into the executor's input, with the
// CIDs under which its signers serve the package as other sources.
func (n *Node) upgradeEntry(e gossip.Entry) upgrade.Entry {
	return upgrade.Entry{
		Seq:       e.Seq,
		EntryHash: e.Hash(),
		Package:   n.upgradePackage(e, n.gossip.PackageCIDs(e.Seq, e.Hash())),
	}
}

// upgradePackage is the package of entry e, with cids as other sources.
func (n *Node) upgradePackage(e gossip.Entry, cids []string) upgrade.Package {
	p := upgrade.Package{
		ProposalID: e.ProposalID,
		Version:    e.Version,
		URL:        e.PackageURL,
		SHA256:     e.PackageHash,
		Size:       e.PackageSize,
	}
	for _, c := range cids {
		if src := "ipfs://" + c; src != e.PackageURL {
			p.Sources = append(p.Sources, src)
		}
	}
	return p
}
