package raftnet

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/cborx"
)

// detEnc is the deterministic encoding of commands and snapshots.
var detEnc = cborx.Enc

var packageHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// normalizePackageHash turns a package hash given as bare hex or with a
// "sha256:" prefix, in any case, into the entry form "sha256:<64 lowercase
// hex>". It returns an error when the input is not a SHA-256 digest.
func normalizePackageHash(h string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(h))
	s = strings.TrimPrefix(s, "sha256:")
	n := "sha256:" + s
	if !packageHashRE.MatchString(n) {
		return "", fmt.Errorf("%w: package hash %q is not a SHA-256 hex digest", errInvalidCommand, h)
	}
	return n, nil
}

// Slot is one position of the order the validators' raft agreed on: the
// package of an approved proposal, or a void. The validators build the
// execution-log entry at Seq from it (with the hash of the entry that was
// final before it) and decide with their own checks whether to sign.
type Slot struct {
	Seq           uint64 `cbor:"-"`
	Void          bool   `cbor:"void,omitempty"`
	ProposalID    string `cbor:"proposal_id,omitempty"`
	Version       string `cbor:"version,omitempty"`
	PackageURL    string `cbor:"package_url,omitempty"`
	PackageHash   string `cbor:"package_hash,omitempty"`
	PackageSize   int64  `cbor:"package_size,omitempty"`
	Action        string `cbor:"action,omitempty"`
	Target        uint64 `cbor:"target,omitempty"`
	ActivateAt    int64  `cbor:"activate_at,omitempty"`
	ActivateAfter int64  `cbor:"activate_after_seconds,omitempty"`
}

// key names what a slot orders: the proposal and the action. One key has
// at most one (non-void) slot.
func (sl Slot) key() string { return sl.Action + "/" + sl.ProposalID }

// validate checks a slot's fields (the shape of its action; how it
// relates to other slots is for the validators to check).
func (sl Slot) validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", errInvalidCommand, fmt.Sprintf(f, a...))
	}
	noPackage := sl.PackageURL == "" && sl.PackageHash == "" && sl.PackageSize == 0
	if sl.Void {
		if sl.ProposalID != "" || sl.Version != "" || !noPackage || sl.Action != "" || sl.Target != 0 || sl.ActivateAt != 0 || sl.ActivateAfter != 0 {
			return bad("a void slot carries nothing")
		}
		return nil
	}
	if !execlog.ValidProposalID(sl.ProposalID) {
		return bad("proposal_id %.80q is not a canonical proposal ID", sl.ProposalID)
	}
	if sl.ActivateAt < 0 || sl.ActivateAfter < 0 || (sl.ActivateAt != 0 && sl.ActivateAfter != 0) || (sl.Action != "" && (sl.ActivateAt != 0 || sl.ActivateAfter != 0)) {
		return bad("schedule (activate_at %d, activate_after_seconds %d) of a %q slot", sl.ActivateAt, sl.ActivateAfter, sl.Action)
	}
	switch sl.Action {
	case "", execlog.ActionActivate:
		switch {
		case (sl.Action == "") != (sl.Target == 0):
			return bad("an upgrade slot has no target, an activate slot has one")
		case !genesis.ValidVersion(sl.Version):
			return bad("version %q is not a semantic version", sl.Version)
		case sl.PackageURL == "" || len(sl.PackageURL) > 2048:
			return bad("package_url must be 1..2048 bytes")
		case !packageHashRE.MatchString(sl.PackageHash):
			return bad("package_hash %q is not sha256:<64 lowercase hex>", sl.PackageHash)
		case sl.PackageSize <= 0:
			return bad("package_size %d must be positive", sl.PackageSize)
		}
	case execlog.ActionCancel:
		if !noPackage || sl.Version != "" {
			return bad("a cancel slot carries no package or version")
		}
	case execlog.ActionRollback:
		if !noPackage || !genesis.ValidVersion(sl.Version) || sl.Target == 0 {
			return bad("a rollback slot has a version and a target and no package")
		}
	default:
		return bad("unknown action %q", sl.Action)
	}
	return nil
}

// same reports whether two slots order the same thing.
func (sl Slot) same(o Slot) bool {
	sl.Seq, o.Seq = 0, 0
	return sl == o
}

// slotOf is the slot a ratify command fills.
func slotOf(r Ratify) Slot {
	return Slot{ProposalID: r.ProposalID, Version: r.Version, PackageURL: r.PackageURL,
		PackageHash: r.PackageHash, PackageSize: r.PackageSize, Action: r.Action, Target: r.Target,
		ActivateAt: r.ActivateAt, ActivateAfter: r.ActivateAfter}
}
