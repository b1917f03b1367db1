package gossip

import (
	"fmt"
	"regexp"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

var (
	packageHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	hex64RE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Field limits of op bodies.
const (
	maxTitle       = 200
	maxDescription = 16 << 10
	maxURL         = 2048
	maxShort       = 128
)

// checkEntry validates an entry's fields (its shape per action; how it
// relates to other entries is checked by validators and executors).
func checkEntry(e execlog.Entry) error {
	switch {
	case e.Seq == 0:
		return fmt.Errorf("%w: entry seq must start at 1", ErrInvalidOp)
	case e.Seq == 1 && e.PrevEntryHash != "":
		return fmt.Errorf("%w: entry 1 has a prev_entry_hash", ErrInvalidOp)
	case e.Seq > 1 && !hex64RE.MatchString(e.PrevEntryHash):
		return fmt.Errorf("%w: entry prev_entry_hash %q", ErrInvalidOp, e.PrevEntryHash)
	case e.ActivateAt < 0 || e.ActivateAfter < 0 || (e.ActivateAt != 0 && e.ActivateAfter != 0) || e.ActivateAfter > MaxActivationDelay:
		return fmt.Errorf("%w: entry schedule (activate_at %d, activate_after_seconds %d)", ErrInvalidOp, e.ActivateAt, e.ActivateAfter)
	case (e.Void || e.Action != "") && (e.ActivateAt != 0 || e.ActivateAfter != 0):
		return fmt.Errorf("%w: only an upgrade entry is scheduled", ErrInvalidOp)
	case e.Target >= e.Seq:
		return fmt.Errorf("%w: entry %d targets entry %d, not an earlier one", ErrInvalidOp, e.Seq, e.Target)
	}
	noPackage := e.PackageURL == "" && e.PackageHash == "" && e.PackageSize == 0
	if e.Void {
		if e.ProposalID != "" || e.Version != "" || !noPackage || e.Action != "" || e.Target != 0 {
			return fmt.Errorf("%w: a void entry carries no proposal, package or action", ErrInvalidOp)
		}
		return nil
	}
	if !execlog.ValidProposalID(e.ProposalID) {
		return fmt.Errorf("%w: entry proposal_id %.80q is not a canonical proposal ID", ErrInvalidOp, e.ProposalID)
	}
	switch e.Action {
	case "", execlog.ActionActivate:
		if (e.Action == "") != (e.Target == 0) {
			return fmt.Errorf("%w: an upgrade entry has no target, an activate entry has one", ErrInvalidOp)
		}
		switch {
		case !genesis.ValidVersion(e.Version):
			return fmt.Errorf("%w: entry version %q", ErrInvalidOp, e.Version)
		case e.PackageURL == "" || len(e.PackageURL) > maxURL:
			return fmt.Errorf("%w: entry package_url", ErrInvalidOp)
		case !packageHashRE.MatchString(e.PackageHash):
			return fmt.Errorf("%w: entry package_hash %q (want sha256:<64 lowercase hex>)", ErrInvalidOp, e.PackageHash)
		case e.PackageSize <= 0:
			return fmt.Errorf("%w: entry package_size %d", ErrInvalidOp, e.PackageSize)
		}
	case execlog.ActionCancel:
		if !noPackage || e.Version != "" {
			return fmt.Errorf("%w: a cancel entry carries no package or version", ErrInvalidOp)
		}
	case execlog.ActionRollback:
		switch {
		case !noPackage:
			return fmt.Errorf("%w: a rollback entry carries no package", ErrInvalidOp)
		case !genesis.ValidVersion(e.Version):
			return fmt.Errorf("%w: rollback entry version %q", ErrInvalidOp, e.Version)
		case e.Target == 0:
			return fmt.Errorf("%w: a rollback entry names the entry it rolls back", ErrInvalidOp)
		}
	default:
		return fmt.Errorf("%w: entry action %q", ErrInvalidOp, e.Action)
	}
	return nil
}

// Proposal types.
const (
	// TypeCodeUpgrade runs a package: now, at ActivateAt, or ActivateAfter
	// seconds after its entry became final.
	TypeCodeUpgrade = "code_upgrade"
	// TypeCancel cancels the approved or scheduled upgrade named by Target
	// before it runs.
	TypeCancel = "cancel"
	// TypeRollback restores, on every node, the state from before the
	// upgrade named by Target (the latest executed one) under Version.
	TypeRollback = "rollback"
)

// Scheduling bounds.
const (
	// MaxActivationDelay bounds how far ahead an upgrade may be scheduled:
	// activate_at at most this many seconds after the proposal's time,
	// activate_after_seconds at most this.
	MaxActivationDelay = 30 * 24 * 3600
	// maxClockSkew is how far in the past (relative to the proposal's
	// advisory time) activate_at may lie.
	maxClockSkew = 3600
)

// ProposalBody is the content of a proposal: a code upgrade (with its
// package, maybe scheduled), a cancel or a network-wide rollback.
type ProposalBody struct {
	// Type is TypeCodeUpgrade (also when empty), TypeCancel or TypeRollback.
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	// Version is the version a code upgrade or a rollback sets.
	Version     string `json:"version,omitempty"`
	PackageURL  string `json:"package_url,omitempty"`
	PackageHash string `json:"package_hash,omitempty"` // sha256:<64 lowercase hex>
	PackageSize int64  `json:"package_size,omitempty"`
	// Target names the proposal a cancel or rollback acts on.
	Target string `json:"target,omitempty"`
	// ActivateAt (unix seconds) or ActivateAfter (seconds after the entry
	// is final) schedule a code upgrade.
	ActivateAt    int64 `json:"activate_at,omitempty"`
	ActivateAfter int64 `json:"activate_after_seconds,omitempty"`
}

// Scheduled reports whether a code upgrade waits for its activation.
func (b ProposalBody) Scheduled() bool { return b.ActivateAt != 0 || b.ActivateAfter != 0 }

func (b ProposalBody) check() error {
	switch {
	case b.Title == "" || len(b.Title) > maxTitle:
		return fmt.Errorf("%w: proposal title must be 1..%d bytes", ErrInvalidOp, maxTitle)
	case len(b.Description) > maxDescription:
		return fmt.Errorf("%w: proposal description longer than %d bytes", ErrInvalidOp, maxDescription)
	}
	switch b.Type {
	case TypeCancel, TypeRollback:
		switch {
		case !execlog.ValidProposalID(b.Target):
			return fmt.Errorf("%w: a %s proposal names its target by canonical proposal ID, got %.80q", ErrInvalidOp, b.Type, b.Target)
		case b.PackageURL != "" || b.PackageHash != "" || b.PackageSize != 0:
			return fmt.Errorf("%w: a %s proposal has no package", ErrInvalidOp, b.Type)
		case b.ActivateAt != 0 || b.ActivateAfter != 0:
			return fmt.Errorf("%w: only a code upgrade can be scheduled", ErrInvalidOp)
		case b.Type == TypeCancel && b.Version != "":
			return fmt.Errorf("%w: a cancel proposal sets no version", ErrInvalidOp)
		case b.Type == TypeRollback && !genesis.ValidVersion(b.Version):
			return fmt.Errorf("%w: rollback version %q is not a semantic version", ErrInvalidOp, b.Version)
		}
		return nil
	case TypeCodeUpgrade:
	default:
		return fmt.Errorf("%w: proposal type %q", errUnknownKind, b.Type)
	}
	switch {
	case b.Target != "":
		return fmt.Errorf("%w: a code upgrade has no target", ErrInvalidOp)
	case b.ActivateAt < 0 || b.ActivateAfter < 0 || (b.ActivateAt != 0 && b.ActivateAfter != 0):
		return fmt.Errorf("%w: schedule with activate_at or activate_after_seconds, not both, not negative", ErrInvalidOp)
	case b.ActivateAfter > MaxActivationDelay:
		return fmt.Errorf("%w: activate_after_seconds %d exceeds %d (30 days)", ErrInvalidOp, b.ActivateAfter, MaxActivationDelay)
	case !genesis.ValidVersion(b.Version):
		return fmt.Errorf("%w: proposal version %q is not a semantic version", ErrInvalidOp, b.Version)
	case b.PackageURL == "" || len(b.PackageURL) > maxURL:
		return fmt.Errorf("%w: proposal package_url must be 1..%d bytes", ErrInvalidOp, maxURL)
	case !packageHashRE.MatchString(b.PackageHash):
		return fmt.Errorf("%w: proposal package_hash %q (want sha256:<64 lowercase hex>)", ErrInvalidOp, b.PackageHash)
	case b.PackageSize <= 0:
		return fmt.Errorf("%w: proposal package_size %d must be positive", ErrInvalidOp, b.PackageSize)
	}
	return nil
}

// Report is a node's signed result of executing a final entry.
type Report struct {
	Seq             uint64 `json:"seq"`
	EntryHash       string `json:"entry_hash"`
	ProposalID      string `json:"proposal_id"`
	Success         bool   `json:"success"`
	Version         string `json:"version"`
	PostStateSHA256 string `json:"post_state_sha256"`
	ErrorClass      string `json:"error_class"`
}

func (r Report) check() error {
	switch {
	case r.Seq == 0:
		return fmt.Errorf("%w: report seq must start at 1", ErrInvalidOp)
	case !hex64RE.MatchString(r.EntryHash):
		return fmt.Errorf("%w: report entry_hash %q", ErrInvalidOp, r.EntryHash)
	case r.ProposalID != "" && !execlog.ValidProposalID(r.ProposalID):
		return fmt.Errorf("%w: report proposal_id %.80q", ErrInvalidOp, r.ProposalID)
	case r.Version != "" && !genesis.ValidVersion(r.Version):
		return fmt.Errorf("%w: report version %q", ErrInvalidOp, r.Version)
	case r.Success && !hex64RE.MatchString(r.PostStateSHA256):
		return fmt.Errorf("%w: successful report needs post_state_sha256 (64 lowercase hex)", ErrInvalidOp)
	case !r.Success && r.PostStateSHA256 != "" && !hex64RE.MatchString(r.PostStateSHA256):
		return fmt.Errorf("%w: report post_state_sha256 %q", ErrInvalidOp, r.PostStateSHA256)
	case len(r.ErrorClass) > maxShort:
		return fmt.Errorf("%w: report error_class too long", ErrInvalidOp)
	case r.Success && r.ErrorClass != "":
		return fmt.Errorf("%w: successful report with an error_class", ErrInvalidOp)
	}
	return nil
}
