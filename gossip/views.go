package gossip

import (
	"math"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Vote choices.
const (
	ChoiceApproval  = "approval"
	ChoiceRejection = "rejection"
)

// Proposal statuses derived by this package. Execution statuses (executed,
// failed, rolled_back) are per node and belong to the executor.
const (
	StatusVoting   = "voting"
	StatusApproved = "approved"
	StatusRejected = "rejected"
	StatusRatified = "ratified"
)

// VoteView is one voter's effective vote.
type VoteView struct {
	Voter  peer.ID `json:"voter"`
	Choice string  `json:"choice"`
	Weight float64 `json:"weight"`
	OpID   string  `json:"op_id"`
	Seq    uint64  `json:"seq"`
}

// Tally is a weighted count of effective votes.
type Tally struct {
	Approval   float64 `json:"approval"`
	Rejection  float64 `json:"rejection"`
	Eligible   float64 `json:"eligible"`
	VotedShare float64 `json:"voted_share"`
}

// ProposalView is a proposal as this node sees it.
type ProposalView struct {
	ID        string       `json:"id"`
	ShortID   string       `json:"short_id"` // readable alias, valid while unambiguous
	OpID      string       `json:"op_id"`
	Proposer  peer.ID      `json:"proposer"`
	Body      ProposalBody `json:"body"`
	CreatedAt time.Time    `json:"created_at"` // advisory (the op's ts)
	FirstSeen time.Time    `json:"first_seen"` // local
	Votes     []VoteView   `json:"votes"`      // sorted by voter
	// Equivocators voted twice with the same seq; their vote does not count.
	Equivocators []peer.ID `json:"equivocators,omitempty"`
	Tally        Tally     `json:"tally"`
	Status       string    `json:"status"`
	Seq          uint64    `json:"seq"` // final entry seq, 0 if none
	// RunSeq is the seq of the entry that ran a code upgrade's package
	// (its activate entry when it was scheduled), 0 if none yet.
	RunSeq uint64 `json:"run_seq,omitempty"`
}

// voterWeight is a voter's weight: 1 + log2(1 + reputation).
func voterWeight(reputation float64) float64 {
	if !(reputation >= 0) {
		reputation = 0
	}
	return 1 + math.Log2(1+reputation)
}

// eligibleWeight is the total weight of the reputation map's keys, summed
// in peer-ID order so every node gets the same float.
func eligibleWeight(rules genesis.Rules) float64 {
	ids := make([]peer.ID, 0, len(rules.Reputation))
	for id := range rules.Reputation {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	total := 0.0
	for _, id := range ids {
		total += voterWeight(rules.Reputation[id])
	}
	return total
}

// eligibleCache holds the eligible weight of the last reputation map it
// summed. Rules change only when an upgrade runs, and a tally is built for
// every view of a proposal: summing (and sorting) a 1000-voter map every
// time was most of a 1000-node network's CPU. The cache keeps the map
// itself, so a map it compares against can never be freed and its address
// reused by a different one; Rules are values whose maps nobody modifies.
type eligibleCache struct {
	mu  sync.Mutex
	rep map[peer.ID]float64
	w   float64
	ok  bool
}

func (c *eligibleCache) weight(rules genesis.Rules) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && len(c.rep) == len(rules.Reputation) &&
		reflect.ValueOf(c.rep).UnsafePointer() == reflect.ValueOf(rules.Reputation).UnsafePointer() {
		return c.w
	}
	c.rep, c.w, c.ok = rules.Reputation, eligibleWeight(rules), true
	return c.w
}

// computeTally weighs votes (one per voter, sorted by voter) under rules.
// Under open voting a voter outside the reputation map weighs 1 and adds
// to the eligible weight.
func computeTally(votes []VoteView, rules genesis.Rules) Tally {
	return tallyWith(votes, rules, eligibleWeight(rules))
}

// tallyWith is computeTally with the reputation map's eligible weight
// already summed.
func tallyWith(votes []VoteView, rules genesis.Rules, eligible float64) Tally {
	t := Tally{Eligible: eligible}
	for _, v := range votes {
		if _, known := rules.Reputation[v.Voter]; !known {
			t.Eligible += v.Weight
		}
		if v.Choice == ChoiceApproval {
			t.Approval += v.Weight
		} else {
			t.Rejection += v.Weight
		}
	}
	if t.Eligible > 0 {
		t.VotedShare = (t.Approval + t.Rejection) / t.Eligible
	}
	return t
}

// decide applies DESIGN.md §5: approved early once approval exceeds half
// of the eligible weight (when enabled); otherwise, once the voting period
// is over, approved when approval > rejection and the quorum is met,
// rejected otherwise (ties reject). Before that it is still voting.
func decide(t Tally, g genesis.Governance, periodOver bool) string {
	if g.EarlyApproval && t.Approval > t.Eligible/2 {
		return StatusApproved
	}
	if !periodOver {
		return StatusVoting
	}
	if t.Approval > t.Rejection && t.VotedShare >= g.Quorum {
		return StatusApproved
	}
	return StatusRejected
}

// approves reports whether a tally can be ratified regardless of time:
// early approval, or the end-of-period rule.
func approves(t Tally, g genesis.Governance) bool {
	return decide(t, g, true) == StatusApproved
}

// effectiveVotes picks each eligible voter's vote with the highest seq;
// two different votes at that seq are equivocation and count as no vote.
func effectiveVotes(ps *proposalState, rules genesis.Rules) (votes []VoteView, equivocators []peer.ID) {
	for voter, ops := range ps.votes {
		if !eligible(voter, rules) {
			continue
		}
		var best *Op
		twice := false
		for _, op := range ops {
			switch {
			case best == nil || op.Seq > best.Seq:
				best, twice = op, false
			case op.Seq == best.Seq && op.ID != best.ID:
				twice = true
			}
		}
		if twice {
			equivocators = append(equivocators, voter)
			continue
		}
		votes = append(votes, VoteView{Voter: voter, Choice: best.Vote.Choice,
			Weight: voterWeight(rules.Reputation[voter]), OpID: best.ID.String(), Seq: best.Seq})
	}
	sort.Slice(votes, func(i, j int) bool { return votes[i].Voter < votes[j].Voter })
	sort.Slice(equivocators, func(i, j int) bool { return equivocators[i] < equivocators[j] })
	return votes, equivocators
}

// proposalView builds the view of one proposal. finalSeq maps proposal
// IDs to their final entry seq.
func (st *store) proposalView(ps *proposalState, rules genesis.Rules, finalSeq map[string]uint64, now time.Time) ProposalView {
	votes, eq := effectiveVotes(ps, rules)
	t := tallyWith(votes, rules, st.eligible.weight(rules))
	period := time.Duration(rules.Governance.VotingPeriodSeconds) * time.Second
	status := decide(t, rules.Governance, !now.Before(ps.firstSeen.Add(period)))
	seq := finalSeq[ps.id]
	if seq != 0 {
		status = StatusRatified
	}
	if votes == nil {
		votes = []VoteView{}
	}
	return ProposalView{
		ID: ps.id, ShortID: ps.short, OpID: ps.op.ID.String(), Proposer: ps.op.Author, Body: *ps.op.Proposal,
		CreatedAt: ps.op.TS, FirstSeen: ps.firstSeen, Votes: votes, Equivocators: eq,
		Tally: t, Status: status, Seq: seq,
	}
}
