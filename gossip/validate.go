package gossip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Validation outcomes besides ErrInvalidOp (reject).
var (
	// ErrDuplicate: the op is already in the set (gossip: Ignore).
	ErrDuplicate = errors.New("gossip: duplicate op")
	// ErrMissingDeps: an op it depends on is not known yet (gossip:
	// Ignore, held as an orphan and fetched).
	ErrMissingDeps = errors.New("gossip: unknown deps")
	// ErrUnauthorised: the author may not issue this op under the rules
	// that apply to it. Wraps ErrInvalidOp (reject).
	ErrUnauthorised = fmt.Errorf("%w: author not authorised", ErrInvalidOp)
	// ErrPendingRules: a ratify or attest op for an entry whose rules this
	// node does not know yet (it has not executed the entry before), from a
	// key that is not a validator now. It is held and validated again when
	// the rules move on (gossip: Ignore).
	ErrPendingRules = errors.New("gossip: op waits for the rules of a later entry")
	// ErrSuperseded: the op is valid but the set keeps something newer in
	// its place (an older vote or report of the same author, a proposal
	// beyond the author's cap, a third signature at one seq). It is not
	// stored (gossip: Ignore; delivering many counts against the peer).
	ErrSuperseded = errors.New("gossip: op superseded by a newer one")
)

// missingDepsError lists the unknown deps of an op. It matches
// errors.Is(err, ErrMissingDeps).
type missingDepsError struct {
	Op      *Op
	Missing []OpID
}

func (e *missingDepsError) Error() string {
	ids := make([]string, len(e.Missing))
	for i, id := range e.Missing {
		ids[i] = id.String()[:12]
	}
	return fmt.Sprintf("gossip: op %s waits for unknown deps %s", e.Op.ID.String()[:12], strings.Join(ids, ","))
}

// Is makes errors.Is(err, ErrMissingDeps) true.
func (e *missingDepsError) Is(target error) bool { return target == ErrMissingDeps }

// opChecker holds what validation reads: the network, the current rules,
// the rules in force for a given execution-log entry, and the op set.
type opChecker struct {
	NetID string
	// Rules are the node's current governance rules (after its last
	// executed entry): they authorise proposals, votes and reports.
	Rules genesis.Rules
	// RulesFor returns the rules in force for entry seq — those of the
	// state after entry seq−1 — and false when the node does not know
	// them yet. Ratify and attest ops are authorised against them. Nil
	// means Rules for every seq.
	RulesFor func(seq uint64) (genesis.Rules, bool)
	// Lookup reads the op set.
	Lookup func(OpID) (*Op, bool)
	// Sigs holds signatures other nodes of this process verified (nil:
	// verify every op).
	Sigs *SignatureCache
}

func (c opChecker) rulesFor(seq uint64) (genesis.Rules, bool) {
	if c.RulesFor == nil {
		return c.Rules, true
	}
	return c.RulesFor(seq)
}

// validate is the single validation used by the GossipSub topic validator,
// the sync path and local publishing. It is a pure function of its inputs.
// It returns the decoded op, or an error:
//   - wrapping ErrInvalidOp: malformed, forged, foreign or unauthorised
//     (reject, penalise the sender);
//   - ErrDuplicate: already known (ignore);
//   - *missingDepsError (ErrMissingDeps): refers to ops not known yet (ignore, hold, fetch);
//   - ErrPendingRules: needs rules this node does not have yet (ignore,
//     hold).
//
// Bounds per author (ErrSuperseded) depend on what the set keeps and are
// applied when the op is added.
func (c opChecker) validate(raw []byte) (*Op, error) {
	op, err := decodeOp(raw, c.NetID, c.Sigs)
	if err != nil {
		return nil, err
	}
	if _, ok := c.Lookup(op.ID); ok {
		return op, ErrDuplicate
	}
	if err := c.authorise(op); err != nil {
		return op, err
	}
	switch op.Kind {
	case KindProposal, KindReport:
		if len(op.Deps) != 0 {
			return nil, fmt.Errorf("%w: %s ops have no deps", ErrInvalidOp, op.Kind)
		}
		return op, nil
	case KindRatify, KindAttest:
		if op.Ratify.Entry.Void {
			if len(op.Deps) != 0 {
				return nil, fmt.Errorf("%w: a %s op on a void entry has no deps", ErrInvalidOp, op.Kind)
			}
			return op, nil
		}
	}
	// Votes, ratify and attest ops depend on exactly the proposal op they name.
	if len(op.Deps) != 1 {
		return nil, fmt.Errorf("%w: %s op must depend on its proposal op only", ErrInvalidOp, op.Kind)
	}
	dep, ok := c.Lookup(op.Deps[0])
	if !ok {
		return op, &missingDepsError{Op: op, Missing: op.Deps}
	}
	want := ""
	if op.Vote != nil {
		want = op.Vote.ProposalID
	} else {
		want = op.Ratify.Entry.ProposalID
	}
	if dep.Kind != KindProposal || proposalIDFor(dep) != want {
		return nil, fmt.Errorf("%w: dep is not proposal %.80s", ErrInvalidOp, want)
	}
	if op.Ratify != nil {
		if err := matchesProposal(op.Ratify.Entry, dep.Proposal); err != nil {
			return nil, err
		}
	}
	return op, nil
}

// matchesProposal checks that an entry does what its proposal asks: an
// upgrade or activate entry carries its code upgrade's package (and an
// upgrade entry its schedule), a cancel entry names a cancel proposal, a
// rollback entry a rollback proposal and its version.
func matchesProposal(e execlog.Entry, p *ProposalBody) error {
	bad := func(what string) error {
		return fmt.Errorf("%w: entry %d %s of proposal %s", ErrInvalidOp, e.Seq, what, e.ProposalID)
	}
	switch e.Action {
	case "", execlog.ActionActivate:
		switch {
		case p.Type != TypeCodeUpgrade:
			return bad("runs a package: not a code upgrade")
		case e.Version != p.Version || e.PackageURL != p.PackageURL || e.PackageHash != p.PackageHash || e.PackageSize != p.PackageSize:
			return bad("does not carry the package")
		case e.Action == "" && (e.ActivateAt != p.ActivateAt || e.ActivateAfter != p.ActivateAfter):
			return bad("does not carry the schedule")
		case e.Action == execlog.ActionActivate && !p.Scheduled():
			return bad("activates an upgrade that is not scheduled")
		}
	case execlog.ActionCancel:
		if p.Type != TypeCancel {
			return bad("cancels: not a cancel proposal")
		}
	case execlog.ActionRollback:
		if p.Type != TypeRollback || e.Version != p.Version {
			return bad("rolls back: not this rollback proposal")
		}
	}
	return nil
}

// authorise applies the governance rules to the op's author: the current
// rules for proposals, votes and reports; the rules in force for the
// entry for ratify and attest ops.
func (c opChecker) authorise(op *Op) error {
	rules := c.Rules
	switch op.Kind {
	case KindProposal:
		if !eligible(op.Author, rules) && !rules.IsValidator(op.Author) {
			return fmt.Errorf("%w: %s may not propose", ErrUnauthorised, op.Author)
		}
	case KindVote:
		if !eligible(op.Author, rules) {
			return fmt.Errorf("%w: %s may not vote", ErrUnauthorised, op.Author)
		}
	case KindRatify, KindAttest:
		seq := op.Ratify.Entry.Seq
		r, known := c.rulesFor(seq)
		switch {
		case known && !r.IsValidator(op.Author):
			return fmt.Errorf("%w: %s is not a validator for entry %d", ErrUnauthorised, op.Author, seq)
		case !known && !rules.IsValidator(op.Author):
			return ErrPendingRules
		}
	case KindReport:
		// Members only, so strangers cannot grow the set with fresh keys.
		if !eligible(op.Author, rules) && !rules.IsValidator(op.Author) {
			return fmt.Errorf("%w: %s may not report", ErrUnauthorised, op.Author)
		}
	}
	return nil
}

// eligible: a key of the reputation map, or anyone under open voting.
func eligible(p peer.ID, rules genesis.Rules) bool {
	if rules.Governance.OpenVoting {
		return true
	}
	_, ok := rules.Reputation[p]
	return ok
}
