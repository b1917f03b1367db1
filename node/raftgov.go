package node

import (
	"context"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
)

// raftGovernance lets the validator raft see gossip's governance views and
// publish ratify ops, without raftnet importing gossip.
type raftGovernance struct {
	g       *gossip.Service
	changed chan struct{}
}

func newRaftGovernance(g *gossip.Service) *raftGovernance {
	rg := &raftGovernance{g: g, changed: make(chan struct{}, 1)}
	events, _ := g.Subscribe() // lives as long as the gossip service
	go func() {
		for range events {
			select {
			case rg.changed <- struct{}{}:
			default:
			}
		}
	}()
	return rg
}

func (rg *raftGovernance) Approved(now time.Time) []raftnet.Candidate {
	var out []raftnet.Candidate
	for _, p := range rg.g.Approved(now) {
		out = append(out, raftnet.Candidate{
			ProposalID:  p.ID,
			Version:     p.Body.Version,
			PackageURL:  p.Body.PackageURL,
			PackageHash: p.Body.PackageHash,
			PackageSize: p.Body.PackageSize,
			VoteIDs:     rg.g.VoteIDs(p.ID),
			Approval:    p.Tally.Approval,
			Rejection:   p.Tally.Rejection,
			Eligible:    p.Tally.Eligible,
		})
	}
	return out
}

func (rg *raftGovernance) CheckTally(ctx context.Context, c raftnet.Candidate) error {
	return rg.g.CheckTally(ctx, c.ProposalID, c.VoteIDs)
}

// PublishRatify signs the entry as a ratify op: raftnet.Entry and
// gossip.Entry are both execlog.Entry.
func (rg *raftGovernance) PublishRatify(ctx context.Context, e raftnet.Entry) error {
	return rg.g.PublishRatify(ctx, e)
}

func (rg *raftGovernance) Changed() <-chan struct{} { return rg.changed }
