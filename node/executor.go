package node

import (
	"context"
	"errors"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// RetryInterval is how often the executor retries an entry that failed
// transiently (e.g. no provider for its package yet). New final entries
// run as soon as gossip reports them.
const RetryInterval = 3 * time.Second

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

// Kick makes the executor look for work now.
func (n *Node) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// executeFinal runs every final entry after the last executed one, in
// order, stopping at the first transient failure or when paused.
func (n *Node) executeFinal(ctx context.Context) {
	for _, e := range n.gossip.ExecutionLog() {
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
		res, err := n.upgrades.Execute(ctx, upgradeEntry(e))
		switch {
		case errors.Is(err, upgrade.ErrPaused):
			return
		case err != nil:
			if ctx.Err() == nil {
				n.metrics.executions.WithLabelValues("transient").Inc()
				n.log.Warn("execution deferred; will retry", "seq", e.Seq, "proposal", e.ProposalID, "err", err)
			}
			return
		}
		if res.Success {
			n.metrics.executions.WithLabelValues("success").Inc()
			n.log.Info("upgrade executed", "seq", e.Seq, "proposal", e.ProposalID, "version", res.Version, "state", res.PostStateSHA256, "took", res.Duration)
			if err := n.refreshRules(); err != nil {
				// The executor validated the rules before committing, so
				// this is a bug; keep the previous rules.
				n.log.Error("rules unreadable after upgrade", "err", err)
			}
			n.raft.ReconcileMembership()
		} else {
			n.metrics.executions.WithLabelValues("failure").Inc()
			n.log.Warn("upgrade failed; state unchanged", "seq", e.Seq, "proposal", e.ProposalID, "class", res.ErrorClass, "err", res.Error)
		}
		n.publishReport(ctx, e, res)
	}
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
			if h.Seq == last && h.Event == upgrade.EventUpgrade {
				n.publishReport(ctx, e, upgrade.Result{
					Seq: h.Seq, ProposalID: h.ProposalID, Success: h.Success,
					Version: h.Version, PostStateSHA256: h.PostStateSHA256, ErrorClass: h.ErrorClass,
				})
			}
		}
	}
}

func upgradeEntry(e gossip.Entry) upgrade.Entry {
	return upgrade.Entry{
		Seq:       e.Seq,
		EntryHash: e.Hash(),
		Package: upgrade.Package{
			ProposalID: e.ProposalID,
			Version:    e.Version,
			URL:        e.PackageURL,
			SHA256:     e.PackageHash,
			Size:       e.PackageSize,
		},
	}
}
