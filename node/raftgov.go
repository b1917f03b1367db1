package node

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
)

// raftGovernance lets the validator raft see gossip's governance views and
// endorse entries, without raftnet importing gossip. Before it attests or
// signs an entry, this validator must hold the verified package and have
// dry-run it on the state the entry will run on (prepare), so an entry
// only becomes final when more than 2/3 of the validators can serve and
// execute its package.
type raftGovernance struct {
	n       *Node
	changed chan struct{}

	mu   sync.Mutex
	jobs map[string]*prepJob // by entry hash
}

// prepJob is one background fetch + dry run of an entry's package.
type prepJob struct {
	seq     uint64
	done    bool
	ready   gossip.Readiness
	started time.Time
}

// prepRetry is how long a failed preparation waits before it is tried
// again.
const prepRetry = 5 * time.Second

func newRaftGovernance(n *Node) *raftGovernance {
	rg := &raftGovernance{n: n, changed: make(chan struct{}, 1), jobs: map[string]*prepJob{}}
	// Every kind, reports included: with reports left out,
	// simnet/TestByzantineLeaderEquivocates no longer reached its victim's
	// slot within a minute (not yet understood which duty waits on a
	// report-triggered poke). Lives as long as the gossip service.
	events, _ := n.gossip.Subscribe()
	go func() {
		for range events {
			rg.poke()
		}
	}()
	return rg
}

func (rg *raftGovernance) poke() {
	select {
	case rg.changed <- struct{}{}:
	default:
	}
}

// Approved lists what the leader should order, in order: while a
// scheduled upgrade waits, only an approved cancel of it or — once its
// time came on this node — its activation; otherwise the approved
// proposals: code upgrades (not cancelled), cancels of upgrades that
// have not run, and a rollback of the latest upgrade that ran.
func (rg *raftGovernance) Approved(now time.Time) []raftnet.Candidate {
	g := rg.n.gossip
	lc := g.Lifecycle()
	approved := g.Approved(now)
	cand := func(p gossip.ProposalView) raftnet.Candidate {
		return raftnet.Candidate{
			ProposalID:    p.ID,
			Version:       p.Body.Version,
			PackageURL:    p.Body.PackageURL,
			PackageHash:   p.Body.PackageHash,
			PackageSize:   p.Body.PackageSize,
			VoteIDs:       g.VoteIDs(p.ID),
			Approval:      p.Tally.Approval,
			Rejection:     p.Tally.Rejection,
			Eligible:      p.Tally.Eligible,
			ActivateAt:    p.Body.ActivateAt,
			ActivateAfter: p.Body.ActivateAfter,
		}
	}
	var out []raftnet.Candidate
	if e := lc.Pending; e != nil {
		for _, p := range approved {
			if p.Body.Type == gossip.TypeCancel && p.Body.Target == e.ProposalID {
				c := cand(p)
				c.Action, c.Target, c.ActivateAt, c.ActivateAfter = execlog.ActionCancel, e.Seq, 0, 0
				return []raftnet.Candidate{c}
			}
		}
		if !now.Before(lc.Due) {
			out = append(out, raftnet.Candidate{ProposalID: e.ProposalID, Version: e.Version, PackageURL: e.PackageURL,
				PackageHash: e.PackageHash, PackageSize: e.PackageSize, Action: execlog.ActionActivate, Target: e.Seq})
		}
		return out
	}
	for _, p := range approved {
		c := cand(p)
		switch p.Body.Type {
		case gossip.TypeCancel:
			_, ran := lc.Ran[p.Body.Target]
			_, gone := lc.Cancelled[p.Body.Target]
			if ran || gone {
				continue // too late: its status says so
			}
			c.Action, c.Target = execlog.ActionCancel, 0
		case gossip.TypeRollback:
			seq, ok := lc.Ran[p.Body.Target]
			if !ok || seq != lc.LastRun {
				continue
			}
			c.Action, c.Target = execlog.ActionRollback, seq
		default:
			if _, ok := lc.Cancelled[p.ID]; ok || g.CancelApproved(p.ID, now) {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func (rg *raftGovernance) NextSeq() uint64 { return rg.n.gossip.NextSeq() }

func (rg *raftGovernance) Final(seq uint64) (raftnet.Slot, bool) {
	e, ok := rg.n.gossip.Final(seq)
	if !ok {
		return raftnet.Slot{}, false
	}
	return raftnet.Slot{Seq: e.Seq, Void: e.Void, ProposalID: e.ProposalID, Version: e.Version,
		PackageURL: e.PackageURL, PackageHash: e.PackageHash, PackageSize: e.PackageSize,
		Action: e.Action, Target: e.Target, ActivateAt: e.ActivateAt, ActivateAfter: e.ActivateAfter}, true
}

func (rg *raftGovernance) Endorse(ctx context.Context, seq uint64, slot *raftnet.Slot) (raftnet.Progress, error) {
	var gs *gossip.Slot
	if slot != nil {
		gs = &gossip.Slot{Void: slot.Void, ProposalID: slot.ProposalID, Version: slot.Version,
			PackageURL: slot.PackageURL, PackageHash: slot.PackageHash, PackageSize: slot.PackageSize,
			Action: slot.Action, Target: slot.Target, ActivateAt: slot.ActivateAt, ActivateAfter: slot.ActivateAfter}
	}
	if slot == nil {
		rg.prepareActivation(ctx, seq)
	}
	p, err := rg.n.gossip.Endorse(ctx, seq, gs, rg.prepare)
	if _, stuck := rg.n.StuckEntry(); stuck || rg.n.Halted() != "" {
		p.Preparing = false // this node will not catch up by itself
	}
	rg.prune(seq)
	return raftnet.Progress{Final: p.Final, Waiting: p.Waiting, Unsignable: p.Unsignable,
		Attested: p.Attested, Preparing: p.Preparing, Ratified: p.Ratified, Quorum: p.Quorum}, err
}

func (rg *raftGovernance) Changed() <-chan struct{} { return rg.changed }

// prepare reports whether the package of e is verified here and dry-runs
// to a deterministic outcome on the state e will run on. It never blocks:
// the first call starts a background job and reports not ready; the job
// pokes the raft loop when it is done.
func (rg *raftGovernance) prepare(_ context.Context, e execlog.Entry) gossip.Readiness {
	n := rg.n
	if last := n.upgrades.LastExecutedSeq(); last+1 != e.Seq {
		// Still preparing while the executor catches up (the stall clock
		// waits), unless it is stuck on an entry or halted.
		_, stuck := n.StuckEntry()
		return gossip.Readiness{Reason: "this node's executor has not run the entries before it yet",
			Pending: !stuck && n.Halted() == ""}
	}
	h := e.Hash()
	rg.mu.Lock()
	defer rg.mu.Unlock()
	j := rg.jobs[h]
	switch {
	case j != nil && j.done && (j.ready.Ready || time.Since(j.started) < prepRetry):
		return j.ready
	case j != nil && !j.done:
		return gossip.Readiness{Reason: "fetching and dry-running the package", Pending: true}
	}
	j = &prepJob{seq: e.Seq, started: time.Now()}
	rg.jobs[h] = j
	n.prepWG.Add(1)
	go func() {
		defer n.prepWG.Done()
		rd := rg.dryRun(n.prepCtx, e)
		rg.mu.Lock()
		j.done, j.ready = true, rd
		rg.mu.Unlock()
		if !rd.Ready {
			n.log.Info("package not ready for endorsement", "seq", e.Seq, "proposal", e.ProposalID, "why", rd.Reason)
		}
		rg.poke()
	}()
	return gossip.Readiness{Reason: "fetching and dry-running the package", Pending: true}
}

// activationLead is how long before a scheduled upgrade's time its
// validators prepare the activate entry, so it is signed on time.
const activationLead = 2 * time.Minute

// prepareActivation starts preparing the activate entry at seq of the
// scheduled upgrade that waits, when its time is near.
func (rg *raftGovernance) prepareActivation(ctx context.Context, seq uint64) {
	g := rg.n.gossip
	lc := g.Lifecycle()
	if lc.Pending == nil || time.Until(lc.Due) > activationLead || seq < 2 {
		return
	}
	prev, ok := g.Final(seq - 1)
	if !ok {
		return
	}
	p := lc.Pending
	rg.prepare(ctx, execlog.Entry{Seq: seq, ProposalID: p.ProposalID, Version: p.Version, PackageURL: p.PackageURL,
		PackageHash: p.PackageHash, PackageSize: p.PackageSize, PrevEntryHash: prev.Hash(),
		Action: execlog.ActionActivate, Target: p.Seq})
}

// dryRun fetches and verifies the package and runs it on a copy of the
// current state. A deterministic failure is ready too: every node will
// fail the entry the same way. A transient failure is not.
func (rg *raftGovernance) dryRun(ctx context.Context, e execlog.Entry) gossip.Readiness {
	n := rg.n
	if e.Action == execlog.ActionRollback {
		// Ready once this node can produce the state to restore.
		if _, err := n.preStateOf(ctx, e.Target); err != nil {
			return gossip.Readiness{Reason: err.Error()}
		}
		return gossip.Readiness{Ready: true}
	}
	res, err := n.upgrades.Test(ctx, n.upgradePackage(e, n.gossip.AttestCIDs(e.Seq, e.Hash())))
	if err != nil {
		return gossip.Readiness{Reason: err.Error()}
	}
	if last := n.upgrades.LastExecutedSeq(); last+1 != e.Seq {
		return gossip.Readiness{Reason: "the state moved on during the dry run"}
	}
	n.log.Debug("dry run for endorsement", "seq", e.Seq, "success", res.Success, "class", res.ErrorClass)
	return gossip.Readiness{Ready: true, PackageCID: n.packageCID(ctx, e)}
}

// prune forgets jobs of seqs before seq.
func (rg *raftGovernance) prune(seq uint64) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	for h, j := range rg.jobs {
		if j.seq < seq && j.done {
			delete(rg.jobs, h)
		}
	}
}

// packageCID is where this node serves e's package over bitswap: the CID
// of an ipfs:// URL ("" for other URLs unless the package was imported).
func (n *Node) packageCID(_ context.Context, e execlog.Entry) string {
	if c, ok := strings.CutPrefix(e.PackageURL, "ipfs://"); ok {
		return c
	}
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	return n.imported[e.PackageHash]
}
