package gossip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Validation outcomes besides ErrInvalidOp (reject).
var (
	// ErrDuplicate: the op is already in the set (gossip: Ignore).
	ErrDuplicate = errors.New("gossip: duplicate op")
	// ErrMissingDeps: an op it depends on is not known yet; see
	// MissingDepsError (gossip: Ignore, held as an orphan and fetched).
	ErrMissingDeps = errors.New("gossip: unknown deps")
	// ErrUnauthorised: the author may not issue this op under the current
	// rules. Wraps ErrInvalidOp (reject).
	ErrUnauthorised = fmt.Errorf("%w: author not authorised", ErrInvalidOp)
)

// MissingDepsError lists the unknown deps of an op. It matches
// errors.Is(err, ErrMissingDeps).
type MissingDepsError struct {
	Op      *Op
	Missing []OpID
}

func (e *MissingDepsError) Error() string {
	ids := make([]string, len(e.Missing))
	for i, id := range e.Missing {
		ids[i] = id.String()[:12]
	}
	return fmt.Sprintf("gossip: op %s waits for unknown deps %s", e.Op.ID.String()[:12], strings.Join(ids, ","))
}

// Is makes errors.Is(err, ErrMissingDeps) true.
func (e *MissingDepsError) Is(target error) bool { return target == ErrMissingDeps }

// Validate is the single validation used by the GossipSub topic validator,
// the sync path and local publishing. It is a pure function of its inputs:
// the wire bytes, the network ID, the current governance rules and a
// lookup into the op set. It returns the decoded op, or an error:
//   - wrapping ErrInvalidOp: malformed, forged, foreign or unauthorised
//     (reject, penalise the sender);
//   - ErrDuplicate: already known (ignore);
//   - *MissingDepsError: refers to ops not known yet (ignore, hold, fetch).
func Validate(raw []byte, netID string, rules genesis.Rules, lookup func(OpID) (*Op, bool)) (*Op, error) {
	op, err := DecodeOp(raw, netID)
	if err != nil {
		return nil, err
	}
	if _, ok := lookup(op.ID); ok {
		return op, ErrDuplicate
	}
	if err := authorise(op, rules); err != nil {
		return nil, err
	}
	switch op.Kind {
	case KindProposal, KindReport:
		if len(op.Deps) != 0 {
			return nil, fmt.Errorf("%w: %s ops have no deps", ErrInvalidOp, op.Kind)
		}
		return op, nil
	}
	// Votes and ratify ops depend on exactly the proposal op they name.
	if len(op.Deps) != 1 {
		return nil, fmt.Errorf("%w: %s op must depend on its proposal op only", ErrInvalidOp, op.Kind)
	}
	dep, ok := lookup(op.Deps[0])
	if !ok {
		return op, &MissingDepsError{Op: op, Missing: op.Deps}
	}
	want := ""
	if op.Vote != nil {
		want = op.Vote.ProposalID
	} else {
		want = op.Ratify.Entry.ProposalID
	}
	if dep.Kind != KindProposal || ProposalIDFor(dep) != want {
		return nil, fmt.Errorf("%w: dep is not proposal %s", ErrInvalidOp, want)
	}
	if op.Ratify != nil {
		p := dep.Proposal
		e := op.Ratify.Entry
		if e.Version != p.Version || e.PackageURL != p.PackageURL || e.PackageHash != p.PackageHash || e.PackageSize != p.PackageSize {
			return nil, fmt.Errorf("%w: ratified entry does not match proposal %s", ErrInvalidOp, want)
		}
	}
	return op, nil
}

// authorise applies the governance rules to the op's author.
func authorise(op *Op, rules genesis.Rules) error {
	switch op.Kind {
	case KindProposal:
		if !eligible(op.Author, rules) && !rules.IsValidator(op.Author) {
			return fmt.Errorf("%w: %s may not propose", ErrUnauthorised, op.Author)
		}
	case KindVote:
		if !eligible(op.Author, rules) {
			return fmt.Errorf("%w: %s may not vote", ErrUnauthorised, op.Author)
		}
	case KindRatify:
		if !rules.IsValidator(op.Author) {
			return fmt.Errorf("%w: %s is not a validator", ErrUnauthorised, op.Author)
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
