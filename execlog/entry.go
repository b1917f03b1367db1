// Package execlog defines the execution-log entry that gossip/ (ratify
// ops, finality) and raftnet/ (the validators' FSM) must hash identically:
// one definition, so the chain of prev_entry_hash cannot diverge between
// them. Like genesis/, it is a leaf of plain data that components may
// import. See docs/data-model.md.
package execlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/synapse-p2p/synapse-p2p/internal/cborx"
)

// hashDomain prefixes an entry's CBOR bytes before hashing, so an entry
// hash can never collide with another synapse hash.
const hashDomain = "synapse/entry/v1"

// Entry is one execution-log entry. Seq is dense from 1; PrevEntryHash is
// the Hash of entry Seq-1 ("" for Seq 1). The CBOR form is a map with these
// snake_case keys; it is also how ratify ops carry the entry.
//
// A void entry (Void true, every package field empty) fills a seq that the
// validators could not ratify for a proposal: every executor skips it and
// the log continues (docs/threat-model.md). The "void" key is omitted when
// false, so the hashes of ordinary entries do not depend on it.
type Entry struct {
	Seq           uint64 `json:"seq" cbor:"seq"`
	ProposalID    string `json:"proposal_id" cbor:"proposal_id"`
	Version       string `json:"version" cbor:"version"`
	PackageURL    string `json:"package_url" cbor:"package_url"`
	PackageHash   string `json:"package_hash" cbor:"package_hash"` // sha256:<64 lowercase hex>
	PackageSize   int64  `json:"package_size" cbor:"package_size"`
	PrevEntryHash string `json:"prev_entry_hash" cbor:"prev_entry_hash"`
	Void          bool   `json:"void,omitempty" cbor:"void,omitempty"`
	// Action is what the entry does: "" runs the proposal's package now —
	// or, with ActivateAt/ActivateAfter, schedules it — ActionActivate runs
	// the package scheduled at Target, ActionCancel cancels it, and
	// ActionRollback restores the state from before the upgrade at Target
	// under Version (docs/governance.md, "The life of an upgrade").
	Action string `json:"action,omitempty" cbor:"action,omitempty"`
	// Target is the seq of the entry an activate, cancel or rollback
	// entry acts on (0 for a cancel of a proposal that never got one).
	Target uint64 `json:"target,omitempty" cbor:"target,omitempty"`
	// ActivateAt (unix seconds) or ActivateAfter (seconds after the entry
	// became final on a node) schedule an upgrade instead of running it.
	ActivateAt    int64 `json:"activate_at,omitempty" cbor:"activate_at,omitempty"`
	ActivateAfter int64 `json:"activate_after_seconds,omitempty" cbor:"activate_after_seconds,omitempty"`
}

// Entry actions.
const (
	ActionActivate = "activate"
	ActionCancel   = "cancel"
	ActionRollback = "rollback"
)

// Scheduled reports whether e schedules its upgrade instead of running it.
func (e Entry) Scheduled() bool {
	return !e.Void && e.Action == "" && (e.ActivateAt != 0 || e.ActivateAfter != 0)
}

// VoidEntry is the void entry at seq chained onto prev.
func VoidEntry(seq uint64, prev string) Entry {
	return Entry{Seq: seq, PrevEntryHash: prev, Void: true}
}

// proposalIDRE is the canonical proposal ID: upgrade_<yyyymmdd_hhmmss of
// the proposal op's advisory ts, UTC>_<first 32 hex digits (128 bits) of
// its op ID>.
var proposalIDRE = regexp.MustCompile(`^upgrade_[0-9]{8}_[0-9]{6}_[0-9a-f]{32}$`)

// ValidProposalID reports whether id has the canonical proposal ID form.
// Raft's FSM and gossip both refuse entries naming anything else, so a
// validator can never be made to order an ID that gossip cannot hold.
func ValidProposalID(id string) bool { return proposalIDRE.MatchString(id) }

// encMode is RFC 8949 §4.2.1 core deterministic encoding: shortest
// integers, map keys sorted by their encoded bytes (so shorter keys first).
var encMode = cborx.Enc

// CanonicalBytes is the deterministic CBOR encoding of e that Hash hashes.
func (e Entry) CanonicalBytes() []byte {
	b, err := encMode.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("execlog: encode entry: %v", err)) // strings and ints cannot fail
	}
	return b
}

// Hash is the entry_hash: lowercase hex SHA-256(hashDomain ‖ CanonicalBytes()).
func (e Entry) Hash() string {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write(e.CanonicalBytes())
	return hex.EncodeToString(h.Sum(nil))
}
