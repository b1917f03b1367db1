package gossip

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// finalSeqsLocked maps proposal IDs to the seq of their final entry.
func (s *Service) finalSeqsLocked() (map[string]uint64, []Entry) {
	log, _, _ := s.st.finalLog(s.deps.Rules())
	m := map[string]uint64{}
	for _, e := range log {
		if _, ok := m[e.ProposalID]; !ok {
			m[e.ProposalID] = e.Seq
		}
	}
	return m, log
}

// Proposals lists every proposal, newest first (by advisory creation time,
// then ID). Statuses use now for the voting period.
func (s *Service) Proposals(now time.Time) []ProposalView {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	final, _ := s.finalSeqsLocked()
	out := make([]ProposalView, 0, len(s.st.proposals))
	for _, ps := range s.st.proposals {
		out = append(out, s.st.proposalView(ps, rules, final, now))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Proposal returns one proposal's view.
func (s *Service) Proposal(id string, now time.Time) (ProposalView, bool) {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps, ok := s.st.proposals[id]
	if !ok {
		return ProposalView{}, false
	}
	final, _ := s.finalSeqsLocked()
	return s.st.proposalView(ps, rules, final, now), true
}

// Approved lists proposals decided "approved" at now (voting period from
// FirstSeen) that have no final entry yet, oldest first: what the raft
// leader should ratify.
func (s *Service) Approved(now time.Time) []ProposalView {
	all := s.Proposals(now)
	var out []ProposalView
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Status == StatusApproved {
			out = append(out, all[i])
		}
	}
	return out
}

// VoteIDs returns the sorted op IDs of a proposal's effective votes.
func (s *Service) VoteIDs(proposalID string) []string {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps, ok := s.st.proposals[proposalID]
	if !ok {
		return nil
	}
	votes, _ := effectiveVotes(ps, rules)
	ids := make([]string, 0, len(votes))
	for _, v := range votes {
		ids = append(ids, v.OpID)
	}
	sort.Strings(ids)
	return ids
}

// CheckTally recomputes a proposal's tally from this node's op set using
// exactly the given vote op IDs (as a raft leader chose them) and returns
// nil if it approves. Missing votes or proposal are fetched through sync,
// waiting at most Config.CheckTallyWait. Errors: ErrUnknownProposal,
// ErrTallyMismatch (with the reason), context errors.
func (s *Service) CheckTally(ctx context.Context, proposalID string, voteIDs []string) error {
	ids := make([]OpID, 0, len(voteIDs))
	for _, v := range voteIDs {
		id, err := ParseOpID(v)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTallyMismatch, err)
		}
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTallyWait)
	defer cancel()
	for {
		s.mu.RLock()
		ps := s.st.proposals[proposalID]
		missing := ps == nil
		for _, id := range ids {
			if _, ok := s.st.get(id); !ok {
				missing = true
			}
		}
		wait := s.opAdded
		s.mu.RUnlock()
		if !missing {
			break
		}
		for _, p := range s.topic.ListPeers() {
			s.requestSync(p)
		}
		select {
		case <-wait:
		case <-time.After(time.Second):
		case <-ctx.Done():
			if ps == nil {
				return fmt.Errorf("%w: %s (%v)", ErrUnknownProposal, proposalID, ctx.Err())
			}
			return fmt.Errorf("%w: votes not available: %v", ErrTallyMismatch, ctx.Err())
		}
	}
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	voters := map[peer.ID]bool{}
	var votes []VoteView
	for _, id := range ids {
		op, _ := s.st.get(id)
		if op.Kind != KindVote || op.Vote.ProposalID != proposalID || op.Deps[0] != s.st.proposals[proposalID].op.ID {
			return fmt.Errorf("%w: op %s is not a vote on %s", ErrTallyMismatch, id, proposalID)
		}
		if voters[op.Author] {
			return fmt.Errorf("%w: two votes of %s", ErrTallyMismatch, op.Author)
		}
		voters[op.Author] = true
		if !eligible(op.Author, rules) {
			continue // not counted under the current rules
		}
		votes = append(votes, VoteView{Voter: op.Author, Choice: op.Vote.Choice, Weight: Weight(rules.Reputation[op.Author])})
	}
	sort.Slice(votes, func(i, j int) bool { return votes[i].Voter < votes[j].Voter })
	t := ComputeTally(votes, rules)
	if !approves(t, rules.Governance) {
		return fmt.Errorf("%w: approval %.4f rejection %.4f eligible %.4f voted %.4f", ErrTallyMismatch,
			t.Approval, t.Rejection, t.Eligible, t.VotedShare)
	}
	return nil
}

// ExecutionLog returns the final entries, dense from seq 1, in order.
func (s *Service) ExecutionLog() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, log := s.finalSeqsLocked()
	return log
}

// Reports groups the reports on entry seq by post-state hash (failed
// reports without a hash group under ""); reporters are sorted and
// distinct.
func (s *Service) Reports(seq uint64) map[string][]peer.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]peer.ID{}
	seen := map[string]map[peer.ID]bool{}
	for _, op := range s.st.reports[seq] {
		h := op.Report.PostStateSHA256
		if seen[h] == nil {
			seen[h] = map[peer.ID]bool{}
		}
		if !seen[h][op.Author] {
			seen[h][op.Author] = true
			out[h] = append(out[h], op.Author)
		}
	}
	for h := range out {
		sort.Slice(out[h], func(i, j int) bool { return out[h][i] < out[h][j] })
	}
	return out
}

// OpCount is the number of ops in the set.
func (s *Service) OpCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.st.ops)
}

// OpIDs returns every op ID in the set, sorted (for comparisons and tests).
func (s *Service) OpIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.st.ops))
	for id := range s.st.ops {
		out = append(out, id.String())
	}
	sort.Strings(out)
	return out
}

// Ops returns the wire bytes of every op, sorted by ID.
func (s *Service) Ops() [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]OpID, 0, len(s.st.ops))
	for id := range s.st.ops {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = s.st.ops[id].Raw
	}
	return out
}

// Ingest validates and adds one op received out of band (e.g. from a
// file); it returns Validate's error.
func (s *Service) Ingest(raw []byte) error { return s.ingest(raw, "") }
