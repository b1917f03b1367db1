package gossip

import (
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// finalSeqsLocked maps proposal IDs to the seq of their final entry.
func (s *Service) finalSeqsLocked() map[string]uint64 {
	m := map[string]uint64{}
	for _, e := range s.finalLog {
		if _, ok := m[e.ProposalID]; !ok && e.ProposalID != "" {
			m[e.ProposalID] = e.Seq
		}
	}
	return m
}

// resolveLocked finds a proposal by canonical ID, op ID (64 hex) or short
// alias (upgrade_<date>_<8 hex>), which must name exactly one proposal.
func (s *Service) resolveLocked(id string) (*proposalState, error) {
	if ps := s.st.proposals[id]; ps != nil {
		return ps, nil
	}
	if opID, err := ParseOpID(id); err == nil {
		if ps := s.st.propByOp[opID]; ps != nil {
			return ps, nil
		}
	}
	switch list := s.st.short[id]; len(list) {
	case 0:
		return nil, fmt.Errorf("%w: %.100s", ErrUnknownProposal, id)
	case 1:
		return list[0], nil
	default:
		ids := make([]string, len(list))
		for i, ps := range list {
			ids[i] = ps.id
		}
		sort.Strings(ids)
		return nil, fmt.Errorf("%w: %s names %d proposals (%v)", ErrAmbiguousProposal, id, len(list), ids)
	}
}

// ResolveProposal returns the canonical ID of the proposal named id (see
// PublishVote for the accepted forms). Errors: ErrUnknownProposal,
// ErrAmbiguousProposal.
func (s *Service) ResolveProposal(id string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps, err := s.resolveLocked(id)
	if err != nil {
		return "", err
	}
	return ps.id, nil
}

// Proposals lists every proposal, newest first (by advisory creation time,
// then ID). Statuses use now for the voting period.
func (s *Service) Proposals(now time.Time) []ProposalView {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	final := s.finalSeqsLocked()
	facts := s.factsLocked()
	out := make([]ProposalView, 0, len(s.st.proposals))
	for _, ps := range s.st.proposals {
		v := s.st.proposalView(ps, rules, final, now)
		facts.status(&v)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Proposal returns one proposal's view; id may be the canonical ID, the
// op ID or an unambiguous short alias. Errors: ErrUnknownProposal,
// ErrAmbiguousProposal.
func (s *Service) Proposal(id string, now time.Time) (ProposalView, error) {
	rules := s.deps.Rules()
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps, err := s.resolveLocked(id)
	if err != nil {
		return ProposalView{}, err
	}
	v := s.st.proposalView(ps, rules, s.finalSeqsLocked(), now)
	f := s.factsLocked()
	f.status(&v)
	return v, nil
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

// ExecutionLog returns the final entries, dense from seq 1, in order.
func (s *Service) ExecutionLog() []execlog.Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]execlog.Entry(nil), s.finalLog...)
}

// Reports groups the reports on entry seq by post-state hash (failed
// reports without a hash group under ""); reporters are sorted and
// distinct.
func (s *Service) Reports(seq uint64) map[string][]peer.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]peer.ID{}
	for _, op := range s.st.reports[seq] {
		h := op.Report.PostStateSHA256
		out[h] = append(out[h], op.Author)
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

// Ingest validates and adds one op received out of band (e.g. from a
// file). Errors: one wrapping ErrInvalidOp (malformed, forged, foreign or
// unauthorised; ErrUnauthorised for the last), ErrDuplicate (already
// known), ErrMissingDeps (held until its deps arrive), ErrPendingRules
// (held until this node knows the rules of its entry), ErrSuperseded (the
// set keeps something newer in its place), or an error persisting it.
func (s *Service) Ingest(raw []byte) error { return s.ingest(raw, "") }
