package gossip

import (
	"context"
	"fmt"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// publish signs a draft with the node key, validates it like any received
// op, stores it and floods it to the topic. Callers hold s.pubMu.
func (s *Service) publishLocked(ctx context.Context, kind string, deps []OpID, body any) (*Op, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	s.mu.RLock()
	seq := s.st.authorSeq[s.self] + 1
	lamport := s.st.lamport + 1
	s.mu.RUnlock()
	// A node whose datastore was lost restarts its seq from the clock, so
	// its new votes still supersede (and never equivocate with) the ones
	// the network already holds. Seq only has to grow per author.
	if ms := s.now().UnixMilli(); ms > 0 && uint64(ms) > seq {
		seq = uint64(ms)
	}
	op, err := encodeOp(s.deps.Key, s.netID, opDraft{Kind: kind, Seq: seq, Lamport: lamport,
		TS: s.now(), Deps: deps, Body: body})
	if err != nil {
		return nil, fmt.Errorf("gossip: encode %s op: %w", kind, err)
	}
	if _, err := s.validate(op.Raw); err != nil {
		return nil, fmt.Errorf("gossip: own %s op: %w", kind, err)
	}
	if _, err := s.addOps([]*Op{op}); err != nil {
		return nil, err
	}
	if err := s.topic.Publish(ctx, op.Raw); err != nil {
		// Stored: sync delivers it later even if gossip failed now.
		s.log.Warn("publish failed; op kept for sync", "kind", kind, "op", op.ID, "err", err)
	}
	return op, nil
}

// PublishProposal signs and publishes a code-upgrade proposal and returns
// its proposal ID. ErrNotEligible if this node may not propose; a body
// that fails the schema wraps ErrInvalidOp.
func (s *Service) PublishProposal(ctx context.Context, b ProposalBody) (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	rules := s.deps.Rules()
	if !eligible(s.self, rules) && !rules.IsValidator(s.self) {
		return "", ErrNotEligible
	}
	if rules.Version != "" && genesis.CompareVersions(b.Version, rules.Version) <= 0 {
		return "", fmt.Errorf("%w: %s is not newer than %s", ErrStaleVersion, b.Version, rules.Version)
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	op, err := s.publishLocked(ctx, KindProposal, nil, proposalBody{Type: "code_upgrade", Title: b.Title,
		Description: b.Description, Version: b.Version, PackageURL: b.PackageURL,
		PackageHash: b.PackageHash, PackageSize: b.PackageSize})
	if err != nil {
		return "", err
	}
	return ProposalIDFor(op), nil
}

// PublishVote signs and publishes this node's vote. choice is approval or
// rejection (yes/no accepted). Errors: ErrUnknownProposal, ErrNotEligible,
// ErrAlreadyVoted (the effective vote already has this choice),
// ErrBadChoice.
func (s *Service) PublishVote(ctx context.Context, proposalID, choice string) error {
	c, err := NormalizeChoice(choice)
	if err != nil {
		return err
	}
	rules := s.deps.Rules()
	if !eligible(s.self, rules) {
		return ErrNotEligible
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	ps := s.st.proposals[proposalID]
	var current string
	if ps != nil {
		votes, _ := effectiveVotes(ps, rules)
		for _, v := range votes {
			if v.Voter == s.self {
				current = v.Choice
			}
		}
	}
	s.mu.RUnlock()
	if ps == nil {
		return fmt.Errorf("%w: %s", ErrUnknownProposal, proposalID)
	}
	if current == c {
		return ErrAlreadyVoted
	}
	_, err = s.publishLocked(ctx, KindVote, []OpID{ps.op.ID}, voteBody{ProposalID: proposalID, Choice: c})
	return err
}

// PublishRatify signs execution-log entry e as this validator. It is
// idempotent: ratifying the same entry again does nothing. Errors:
// ErrNotValidator, ErrUnknownProposal, or a malformed entry / one that does
// not match its proposal (wraps ErrInvalidOp).
func (s *Service) PublishRatify(ctx context.Context, e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if !s.deps.Rules().IsValidator(s.self) {
		return ErrNotValidator
	}
	h := e.Hash()
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	ps := s.st.proposals[e.ProposalID]
	_, done := s.st.ratifies[e.Seq][h][s.self]
	s.mu.RUnlock()
	if ps == nil {
		return fmt.Errorf("%w: %s", ErrUnknownProposal, e.ProposalID)
	}
	if done {
		return nil
	}
	_, err := s.publishLocked(ctx, KindRatify, []OpID{ps.op.ID}, ratifyBody{Entry: entryCBOR(e), EntryHash: h})
	return err
}

// PublishReport signs and publishes this node's result of executing entry
// r.Seq. Publishing an identical report again does nothing. Only eligible
// voters and validators may report (ErrNotEligible).
func (s *Service) PublishReport(ctx context.Context, r Report) error {
	if err := r.check(); err != nil {
		return err
	}
	if rules := s.deps.Rules(); !eligible(s.self, rules) && !rules.IsValidator(s.self) {
		return ErrNotEligible
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	dup := false
	for _, op := range s.st.reports[r.Seq] {
		if op.Author == s.self && *op.Report == r {
			dup = true
		}
	}
	s.mu.RUnlock()
	if dup {
		return nil
	}
	_, err := s.publishLocked(ctx, KindReport, nil, reportBody(r))
	return err
}
