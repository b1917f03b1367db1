package gossip

import (
	"context"
	"fmt"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// publishLocked signs a draft with the node key, validates it like any
// received op, stores it (attest ops are only noted) and floods it to the
// topic. Callers hold s.pubMu.
func (s *Service) publishLocked(ctx context.Context, kind string, deps []OpID, body any) (*Op, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	s.mu.RLock()
	seq := s.st.authorSeq[s.self] + 1
	if a := s.endorse.lastAttestSeq; a >= seq {
		seq = a + 1
	}
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
	if kind == KindAttest {
		s.mu.Lock()
		s.endorse.lastAttestSeq = seq
		s.mu.Unlock()
		s.noteAttest(op)
	} else {
		n, err := s.addOps([]*Op{op})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("gossip: own %s op was not kept", kind)
		}
	}
	if err := s.topic.Publish(ctx, op.Raw); err != nil {
		// Stored: sync delivers it later even if gossip failed now.
		s.log.Warn("publish failed; op kept for sync", "kind", kind, "op", op.ID, "err", err)
	}
	return op, nil
}

// PublishProposal signs and publishes a proposal — a code upgrade (Type
// "" or TypeCodeUpgrade, maybe scheduled), a cancel or a rollback — and
// returns its proposal ID. The target of a cancel or rollback may be given
// in any form ResolveProposal accepts. ErrNotEligible if this node may not
// propose, ErrPackageTooLarge above the network's package limit,
// ErrStaleVersion for a version not above the network's,
// ErrUnknownProposal/ErrAmbiguousProposal for a target; a body that fails
// the schema wraps ErrInvalidOp.
func (s *Service) PublishProposal(ctx context.Context, b ProposalBody) (string, error) {
	if b.Type == "" {
		b.Type = TypeCodeUpgrade
	}
	rules := s.deps.Rules()
	if b.Target != "" {
		canon, err := s.ResolveProposal(b.Target)
		if err != nil {
			return "", err
		}
		s.mu.RLock()
		target := s.st.proposals[canon]
		s.mu.RUnlock()
		if target == nil || target.op.Proposal.Type != TypeCodeUpgrade {
			return "", fmt.Errorf("%w: the target of a %s must be a code upgrade", ErrInvalidOp, b.Type)
		}
		s.mu.RLock()
		f := s.factsLocked()
		s.mu.RUnlock()
		ran, hasRun := f.ran[canon]
		switch {
		case b.Type == TypeCancel && hasRun:
			return "", fmt.Errorf("%w: too late to cancel: proposal %s already ran in entry %d (propose a rollback)", ErrInvalidOp, canon, ran)
		case b.Type == TypeCancel && f.cancelled[canon] != 0:
			return "", fmt.Errorf("%w: proposal %s was already cancelled by entry %d", ErrInvalidOp, canon, f.cancelled[canon])
		case b.Type == TypeRollback && !hasRun:
			return "", fmt.Errorf("%w: proposal %s has not run, so there is nothing to roll back", ErrInvalidOp, canon)
		case b.Type == TypeRollback && ran != f.lastRun:
			return "", fmt.Errorf("%w: only the latest upgrade (entry %d) can be rolled back; proposal %s ran in entry %d", ErrInvalidOp, f.lastRun, canon, ran)
		}
		b.Target = canon
	}
	if err := b.check(); err != nil {
		return "", err
	}
	if !eligible(s.self, rules) && !rules.IsValidator(s.self) {
		return "", ErrNotEligible
	}
	if max := rules.Governance.Limits.WithDefaults().MaxPackageBytes; b.PackageSize > max {
		return "", fmt.Errorf("%w: %d bytes, the network allows %d (limits.max_package_bytes)", ErrPackageTooLarge, b.PackageSize, max)
	}
	if b.Version != "" && rules.Version != "" && genesis.CompareVersions(b.Version, rules.Version) <= 0 {
		return "", fmt.Errorf("%w: %s is not newer than %s", ErrStaleVersion, b.Version, rules.Version)
	}
	if b.ActivateAt != 0 {
		now := s.now().Unix()
		if b.ActivateAt < now || b.ActivateAt > now+MaxActivationDelay {
			return "", fmt.Errorf("%w: activate_at must lie between now and 30 days ahead", ErrInvalidOp)
		}
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	op, err := s.publishLocked(ctx, KindProposal, nil, b.wire())
	if err != nil {
		return "", err
	}
	return proposalIDFor(op), nil
}

// PublishVote signs and publishes this node's vote. proposalID may be the
// canonical ID, the op ID or an unambiguous short alias. choice is
// approval or rejection (yes/no accepted). Errors: ErrUnknownProposal,
// ErrAmbiguousProposal, ErrNotEligible, ErrAlreadyVoted (the effective
// vote already has this choice), ErrBadChoice.
func (s *Service) PublishVote(ctx context.Context, proposalID, choice string) error {
	c, err := normalizeChoice(choice)
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
	ps, err := s.resolveLocked(proposalID)
	var current string
	if err == nil {
		votes, _ := effectiveVotes(ps, rules)
		for _, v := range votes {
			if v.Voter == s.self {
				current = v.Choice
			}
		}
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if current == c {
		return ErrAlreadyVoted
	}
	_, err = s.publishLocked(ctx, KindVote, []OpID{ps.op.ID}, voteBody{ProposalID: ps.id, Choice: c})
	return err
}

// sign publishes this validator's ratify op for e. The signing record is
// checked and written (and synced to disk) first: a validator never signs
// two different entries at one seq, across restarts (ErrDoubleSign).
// Signing the same entry again republishes nothing new.
func (s *Service) sign(ctx context.Context, e execlog.Entry, cid string) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	h := e.Hash()
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	rec, recorded := s.st.signed[e.Seq]
	mine := s.st.ratifies[e.Seq][s.self]
	dep, err := s.entryDepsLocked(e)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	for _, op := range mine {
		if op.Ratify.EntryHash != h {
			return fmt.Errorf("%w: seq %d already signed as %s (op set)", ErrDoubleSign, e.Seq, op.Ratify.EntryHash)
		}
		return nil
	}
	if recorded && rec != h {
		return fmt.Errorf("%w: seq %d already signed as %s (signing record)", ErrDoubleSign, e.Seq, rec)
	}
	if !recorded {
		if err := s.st.persistSigned(ctx, e.Seq, h); err != nil {
			return fmt.Errorf("gossip: signing record: %w", err)
		}
		s.mu.Lock()
		s.st.signed[e.Seq] = h
		s.mu.Unlock()
	}
	_, err = s.publishLocked(ctx, KindRatify, dep, ratifyBody{Entry: e, EntryHash: h, PackageCID: cid})
	return err
}

// attest publishes this validator's (transient) attest op for e.
func (s *Service) attest(ctx context.Context, e execlog.Entry, cid string) error {
	s.mu.RLock()
	dep, err := s.entryDepsLocked(e)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	_, err = s.publishLocked(ctx, KindAttest, dep, ratifyBody{Entry: e, EntryHash: e.Hash(), PackageCID: cid})
	return err
}

// entryDepsLocked is the dep list of a ratify or attest op for e: the op
// of e's proposal, none for a void entry. The caller holds s.mu.
func (s *Service) entryDepsLocked(e execlog.Entry) ([]OpID, error) {
	if e.Void {
		return nil, nil
	}
	ps := s.st.proposals[e.ProposalID]
	if ps == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownProposal, e.ProposalID)
	}
	return []OpID{ps.op.ID}, nil
}

// PublishReport signs and publishes this node's result of executing entry
// r.Seq. Publishing an identical report again does nothing; a different
// one replaces this node's earlier report on that seq. Only eligible
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
	cur := s.st.reports[r.Seq][s.self]
	s.mu.RUnlock()
	if cur != nil && *cur.Report == r {
		return nil
	}
	_, err := s.publishLocked(ctx, KindReport, nil, reportBody(r))
	return err
}
