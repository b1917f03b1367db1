package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// retryInterval is how often the executor wakes without an event. An
// entry that failed transiently is retried with exponential backoff from
// retryMin to retryMax. New final entries run as soon as gossip reports
// them.
const retryInterval = 3 * time.Second

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
// It wakes when an entry becomes final or a signature arrives (which may
// reveal a conflicting log), on Kick and every retryInterval.
func (n *Node) runExecutor(ctx context.Context) {
	defer close(n.execDone)
	events, cancel := n.gossip.Subscribe(gossip.EntryFinal, gossip.RatifyAdded)
	defer cancel()
	t := time.NewTicker(retryInterval)
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

// Halted is why the executor halted on a conflicting log ("" when it
// did not).
func (n *Node) Halted() string {
	n.exec.mu.Lock()
	defer n.exec.mu.Unlock()
	return n.exec.halted
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
		res, err := n.runEntry(ctx, e)
		switch {
		case errors.Is(err, upgrade.ErrPaused):
			return
		case err != nil:
			if ctx.Err() == nil {
				n.metrics.executions.WithLabelValues("transient").Inc()
				s := n.noteTransient(e, err)
				n.notify(httpapi.EventExecutor, e.ProposalID, e.Seq)
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
		case e.Scheduled():
			n.metrics.executions.WithLabelValues("scheduled").Inc()
			n.log.Info("upgrade scheduled", "seq", e.Seq, "proposal", e.ProposalID, "ready", res.Success, "would_be", res.WouldBeSHA256)
			res.ErrorClass = "scheduled"
			if !res.Success {
				res.ErrorClass = "scheduled_failing"
			}
			res.Success, res.PostStateSHA256 = false, res.WouldBeSHA256
		case e.Action == execlog.ActionCancel:
			n.metrics.executions.WithLabelValues("cancelled").Inc()
			n.log.Info("upgrade cancelled", "seq", e.Seq, "target", e.Target)
			res.ErrorClass, res.Success = "cancelled", false
		case res.Success:
			n.metrics.executions.WithLabelValues("success").Inc()
			n.log.Info("upgrade executed", "seq", e.Seq, "proposal", e.ProposalID, "version", res.Version, "state", res.PostStateSHA256, "took", res.Duration)
		default:
			n.metrics.executions.WithLabelValues("failure").Inc()
			n.log.Warn("upgrade failed; state unchanged", "seq", e.Seq, "proposal", e.ProposalID, "class", res.ErrorClass, "err", res.Error)
		}
		n.afterEntry(ctx)
		n.publishReport(ctx, e, res)
		n.notify(httpapi.EventExecuted, e.ProposalID, e.Seq)
	}
}

// runEntry executes one final entry by its action.
func (n *Node) runEntry(ctx context.Context, e execlog.Entry) (upgrade.Result, error) {
	switch {
	case e.Void:
		return n.upgrades.Void(ctx, e.Seq, e.Hash())
	case e.Scheduled():
		return n.upgrades.Schedule(ctx, n.upgradeEntry(e))
	case e.Action == execlog.ActionCancel:
		what := fmt.Sprintf("cancelled the scheduled upgrade of entry %d", e.Target)
		if e.Target == 0 {
			what = "cancelled an approved upgrade before it was ordered"
		}
		return n.upgrades.Skip(ctx, n.upgradeEntry(e), upgrade.EventCancelled, what)
	case e.Action == execlog.ActionRollback:
		pre, err := n.preStateOf(ctx, e.Target)
		if err != nil {
			return upgrade.Result{}, err
		}
		return n.upgrades.RollbackNetwork(ctx, n.upgradeEntry(e), e.Target, e.Version, pre)
	}
	return n.upgrades.Execute(ctx, n.upgradeEntry(e)) // now, or an activation
}

// preStateOf is the state from before the upgrade that ran at target:
// the verified backup, or — when this node has none (it joined later, its
// backup is damaged) — the state recomputed by replaying the log from the
// genesis state, checked entry by entry against the hashes history holds.
func (n *Node) preStateOf(ctx context.Context, target uint64) ([]byte, error) {
	pre, err := n.upgrades.PreStateOf(target)
	if !errors.Is(err, upgrade.ErrNeedPreState) {
		return pre, err
	}
	n.log.Warn("no backup of the state to restore; replaying the log", "target", target, "why", err)
	return n.replayTo(ctx, target)
}

// replayTo recomputes the state before entry target from the genesis
// state, running again every entry that changed the state.
func (n *Node) replayTo(ctx context.Context, target uint64) ([]byte, error) {
	genesisState, err := n.genesis.InitialState()
	if err != nil {
		return nil, err
	}
	state, version := genesisState, n.genesis.Version
	after := map[uint64][]byte{} // state after each state-changing entry
	hist := map[uint64]upgrade.HistoryEntry{}
	for _, h := range n.upgrades.History() {
		if h.Seq != 0 && (h.Event == upgrade.EventUpgrade || h.Event == upgrade.EventNetworkRollback) {
			hist[h.Seq] = h
		}
	}
	log := n.gossip.ExecutionLog()
	for _, e := range log {
		if e.Seq >= target {
			break
		}
		h, ok := hist[e.Seq]
		if !ok || !h.Success {
			continue
		}
		var next []byte
		var sum string
		switch e.Action {
		case "", execlog.ActionActivate:
			next, sum, err = n.upgrades.Replay(ctx, state, version, n.upgradePackage(e, n.gossip.PackageCIDs(e.Seq, e.Hash())))
		case execlog.ActionRollback:
			pre := genesisState // the state before its target
			for q := e.Target - 1; q > 0; q-- {
				if s, ok := after[q]; ok {
					pre = s
					break
				}
			}
			next, sum, err = upgrade.SetVersion(pre, e.Version)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("node: replay entry %d: %w", e.Seq, err)
		}
		if sum != h.PostStateSHA256 {
			return nil, fmt.Errorf("node: replay of entry %d gives state %s, history says %s", e.Seq, sum, h.PostStateSHA256)
		}
		state, version = next, h.Version
		after[e.Seq] = next
	}
	return state, nil
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
func (n *Node) checkConflict(log []execlog.Entry) bool {
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
			n.notify(httpapi.EventExecutor, "", h.Seq)
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

func (n *Node) noteTransient(e execlog.Entry, err error) Stuck {
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
	was := n.exec.stuck
	n.exec.stuck = nil
	n.exec.mu.Unlock()
	n.metrics.stuckSeq.Set(0)
	if was != nil {
		n.notify(httpapi.EventExecutor, was.Proposal, was.Seq)
	}
}

func (n *Node) publishReport(ctx context.Context, e execlog.Entry, res upgrade.Result) {
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
func (n *Node) upgradeEntry(e execlog.Entry) upgrade.Entry {
	return upgrade.Entry{
		Seq:       e.Seq,
		EntryHash: e.Hash(),
		Package:   n.upgradePackage(e, n.gossip.PackageCIDs(e.Seq, e.Hash())),
	}
}

// upgradePackage is the package of entry e, with cids as other sources.
func (n *Node) upgradePackage(e execlog.Entry, cids []string) upgrade.Package {
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
