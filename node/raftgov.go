package node

import (
	"context"
	"strings"
	"sync"
	"time"

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
	events, _ := n.gossip.Subscribe() // lives as long as the gossip service
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

func (rg *raftGovernance) Approved(now time.Time) []raftnet.Candidate {
	g := rg.n.gossip
	var out []raftnet.Candidate
	for _, p := range g.Approved(now) {
		out = append(out, raftnet.Candidate{
			ProposalID:  p.ID,
			Version:     p.Body.Version,
			PackageURL:  p.Body.PackageURL,
			PackageHash: p.Body.PackageHash,
			PackageSize: p.Body.PackageSize,
			VoteIDs:     g.VoteIDs(p.ID),
			Approval:    p.Tally.Approval,
			Rejection:   p.Tally.Rejection,
			Eligible:    p.Tally.Eligible,
		})
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
		PackageURL: e.PackageURL, PackageHash: e.PackageHash, PackageSize: e.PackageSize}, true
}

func (rg *raftGovernance) Endorse(ctx context.Context, seq uint64, slot *raftnet.Slot) (raftnet.Progress, error) {
	var gs *gossip.Slot
	if slot != nil {
		gs = &gossip.Slot{Void: slot.Void, ProposalID: slot.ProposalID, Version: slot.Version,
			PackageURL: slot.PackageURL, PackageHash: slot.PackageHash, PackageSize: slot.PackageSize}
	}
	p, err := rg.n.gossip.Endorse(ctx, seq, gs, rg.prepare)
	rg.prune(seq)
	return raftnet.Progress{Final: p.Final, Waiting: p.Waiting, Unsignable: p.Unsignable,
		Attested: p.Attested, Preparing: p.Preparing, Ratified: p.Ratified, Quorum: p.Quorum}, err
}

func (rg *raftGovernance) Changed() <-chan struct{} { return rg.changed }

// prepare reports whether the package of e is verified here and dry-runs
// to a deterministic outcome on the state e will run on. It never blocks:
// the first call starts a background job and reports not ready; the job
// pokes the raft loop when it is done.
func (rg *raftGovernance) prepare(_ context.Context, e gossip.Entry) gossip.Readiness {
	n := rg.n
	if last := n.upgrades.LastExecutedSeq(); last+1 != e.Seq {
		return gossip.Readiness{Reason: "this node's executor has not run the entries before it yet"}
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

// dryRun fetches and verifies the package and runs it on a copy of the
// current state. A deterministic failure is ready too: every node will
// fail the entry the same way. A transient failure is not.
func (rg *raftGovernance) dryRun(ctx context.Context, e gossip.Entry) gossip.Readiness {
	n := rg.n
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
func (n *Node) packageCID(_ context.Context, e gossip.Entry) string {
	if c, ok := strings.CutPrefix(e.PackageURL, "ipfs://"); ok {
		return c
	}
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	return n.imported[e.PackageHash]
}
