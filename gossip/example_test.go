package gossip_test

import (
	"fmt"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
)

// A tally of three voters with reputations 0, 1 and 3 (weights 1, 2, 3)
// out of an eligible weight of 10, under quorum ½ with early approval.
func ExampleDecide() {
	gov := genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true}
	t := gossip.Tally{Approval: gossip.Weight(0) + gossip.Weight(3), Rejection: gossip.Weight(1), Eligible: 10}
	t.VotedShare = (t.Approval + t.Rejection) / t.Eligible
	fmt.Println("while open:", gossip.Decide(t, gov, false))
	fmt.Println("at the end:", gossip.Decide(t, gov, true))
	t.Approval += 2 // another voter of weight 2 approves: 6 > 10/2
	fmt.Println("early:     ", gossip.Decide(t, gov, false))
	// Output:
	// while open: voting
	// at the end: approved
	// early:      approved
}
