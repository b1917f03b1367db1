package raftnet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/internal/cborx"
)

// maxCommandSize bounds an encoded raft command; larger ones are rejected.
const maxCommandSize = 64 << 10

// commandVersion is the version of the raft command encoding.
const commandVersion = 1

// Command kinds.
const (
	kindRatify = "ratify" // order an approved proposal into the next slot
	kindVoid   = "void"   // void a slot the validators could not ratify
	kindSet    = "set"    // align a slot with the entry that became final there
)

// maxVoids is how many times a proposal's slot may be voided before the
// FSM refuses to order it again (a proposal validators keep refusing
// must not loop through the log forever).
const maxVoids = 3

// errInvalidCommand is returned (and is the FSM's apply result) for a raft
// command that does not decode or does not validate.
var errInvalidCommand = errors.New("raftnet: invalid command")

// Ratify is the raft command the leader applies for an approved proposal
// (docs/data-model.md "Raft command"). VoteIDs are sorted and unique;
// VoteDigest is hex SHA-256 of the concatenated VoteIDs strings.
type Ratify struct {
	ProposalID  string   `cbor:"proposal_id"`
	Version     string   `cbor:"version"`
	PackageURL  string   `cbor:"package_url"`
	PackageHash string   `cbor:"package_hash"`
	PackageSize int64    `cbor:"package_size"`
	VoteIDs     []string `cbor:"vote_ids"`
	VoteDigest  string   `cbor:"vote_digest"`
	Tally       Tally    `cbor:"tally"`
	// Action, Target and the schedule say what the slot does
	// (execlog.Entry): run or schedule the package (""), activate a
	// scheduled one, cancel, or roll back.
	Action        string `cbor:"action,omitempty"`
	Target        uint64 `cbor:"target,omitempty"`
	ActivateAt    int64  `cbor:"activate_at,omitempty"`
	ActivateAfter int64  `cbor:"activate_after_seconds,omitempty"`
}

// Tally is the weighted count the leader saw when it proposed a Ratify.
type Tally struct {
	Approval  float64 `cbor:"approval"`
	Rejection float64 `cbor:"rejection"`
	Eligible  float64 `cbor:"eligible"`
}

// voidCommand voids slot Seq: the validators could not sign its entry (the
// leader that ordered it was wrong, or honest views disagree), so every
// validator attests a void entry there instead and the log moves on.
type voidCommand struct {
	Seq uint64 `cbor:"seq"`
}

// setCommand aligns slot Seq with the entry that became final at that seq (the
// finality of ratify ops decides; raft only follows). A validator whose
// log a dishonest leader fed a different command at that slot converges
// through it.
type setCommand struct {
	Seq  uint64 `cbor:"seq"`
	Slot Slot   `cbor:"slot"`
}

type command struct {
	V      uint         `cbor:"v"`
	Kind   string       `cbor:"kind"`
	Ratify *Ratify      `cbor:"ratify,omitempty"`
	Void   *voidCommand `cbor:"void,omitempty"`
	Set    *setCommand  `cbor:"set,omitempty"`
}

// detDec decodes raft commands strictly (internal/cborx).
var detDec = cborx.Strict(cborx.Limits{MaxArrayElements: 4096, MaxMapPairs: 64, MaxNestedLevels: 8})

// voteDigest is hex SHA-256 of the concatenation of the sorted vote IDs.
func voteDigest(sortedIDs []string) string {
	h := sha256.New()
	for _, id := range sortedIDs {
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RatifyFromCandidate builds the command for c: it sorts and de-duplicates
// the vote IDs, computes their digest and normalises the package hash.
func RatifyFromCandidate(c Candidate) (Ratify, error) {
	ids := slices.Clone(c.VoteIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ph := ""
	if c.PackageHash != "" || (c.Action != execlog.ActionCancel && c.Action != execlog.ActionRollback) {
		var err error
		if ph, err = normalizePackageHash(c.PackageHash); err != nil {
			return Ratify{}, err
		}
	}
	r := Ratify{
		ProposalID:    c.ProposalID,
		Version:       c.Version,
		PackageURL:    c.PackageURL,
		PackageHash:   ph,
		PackageSize:   c.PackageSize,
		VoteIDs:       ids,
		VoteDigest:    voteDigest(ids),
		Tally:         Tally{Approval: c.Approval, Rejection: c.Rejection, Eligible: c.Eligible},
		Action:        c.Action,
		Target:        c.Target,
		ActivateAt:    c.ActivateAt,
		ActivateAfter: c.ActivateAfter,
	}
	return r, r.Validate()
}

// Candidate returns the governance view of the command, as CheckTally gets it.
func (r Ratify) Candidate() Candidate {
	return Candidate{
		ProposalID:    r.ProposalID,
		Version:       r.Version,
		PackageURL:    r.PackageURL,
		PackageHash:   r.PackageHash,
		PackageSize:   r.PackageSize,
		VoteIDs:       slices.Clone(r.VoteIDs),
		Approval:      r.Tally.Approval,
		Rejection:     r.Tally.Rejection,
		Eligible:      r.Tally.Eligible,
		Action:        r.Action,
		Target:        r.Target,
		ActivateAt:    r.ActivateAt,
		ActivateAfter: r.ActivateAfter,
	}
}

// Validate checks every field; it depends on nothing but r, so all
// validators reach the same verdict.
func (r Ratify) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", errInvalidCommand, fmt.Sprintf(f, a...))
	}
	if err := slotOf(r).validate(); err != nil {
		return err
	}
	switch {
	case !slices.IsSorted(r.VoteIDs) || len(slices.Compact(slices.Clone(r.VoteIDs))) != len(r.VoteIDs):
		return bad("vote_ids must be sorted and unique")
	case r.VoteDigest != voteDigest(r.VoteIDs):
		return bad("vote_digest does not match vote_ids")
	}
	for _, f := range []float64{r.Tally.Approval, r.Tally.Rejection, r.Tally.Eligible} {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return bad("tally weights must be finite and non-negative")
		}
	}
	return nil
}

// encodeCommand returns the raft log bytes of a command.
func encodeCommand(c command) ([]byte, error) {
	c.V = commandVersion
	if err := c.validate(); err != nil {
		return nil, err
	}
	b, err := detEnc.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", errInvalidCommand, err)
	}
	if len(b) > maxCommandSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", errInvalidCommand, len(b), maxCommandSize)
	}
	return b, nil
}

// encodeRatify returns the raft log bytes of r.
func encodeRatify(r Ratify) ([]byte, error) {
	return encodeCommand(command{Kind: kindRatify, Ratify: &r})
}

// validate checks that exactly the field of the kind is set and valid.
func (c command) validate() error {
	n := 0
	for _, set := range []bool{c.Ratify != nil, c.Void != nil, c.Set != nil} {
		if set {
			n++
		}
	}
	if c.V != commandVersion || n != 1 {
		return fmt.Errorf("%w: unknown command v=%d kind=%q", errInvalidCommand, c.V, c.Kind)
	}
	switch {
	case c.Kind == kindRatify && c.Ratify != nil:
		return c.Ratify.Validate()
	case c.Kind == kindVoid && c.Void != nil:
		if c.Void.Seq == 0 {
			return fmt.Errorf("%w: void of seq 0", errInvalidCommand)
		}
		return nil
	case c.Kind == kindSet && c.Set != nil:
		if c.Set.Seq == 0 {
			return fmt.Errorf("%w: set of seq 0", errInvalidCommand)
		}
		return c.Set.Slot.validate()
	}
	return fmt.Errorf("%w: unknown command kind %q", errInvalidCommand, c.Kind)
}

// decodeCommand parses raft log bytes strictly: canonical CBOR only, known
// fields only, bounded size, valid fields.
func decodeCommand(b []byte) (command, error) {
	if len(b) > maxCommandSize {
		return command{}, fmt.Errorf("%w: %d bytes exceeds %d", errInvalidCommand, len(b), maxCommandSize)
	}
	var c command
	if err := detDec.Unmarshal(b, &c); err != nil {
		return command{}, fmt.Errorf("%w: %v", errInvalidCommand, err)
	}
	if err := c.validate(); err != nil {
		return command{}, err
	}
	again, err := detEnc.Marshal(c)
	if err != nil || !bytes.Equal(again, b) {
		return command{}, fmt.Errorf("%w: not canonical CBOR", errInvalidCommand)
	}
	return c, nil
}

// decodeRatify parses the bytes of a ratify command (tests and fuzzing).
func decodeRatify(b []byte) (Ratify, error) {
	c, err := decodeCommand(b)
	if err != nil {
		return Ratify{}, err
	}
	if c.Ratify == nil {
		return Ratify{}, fmt.Errorf("%w: not a ratify command", errInvalidCommand)
	}
	return *c.Ratify, nil
}

// snapDec decodes snapshots: like detDec, without the array bound (a
// snapshot holds every entry).
var snapDec = cborx.Strict(cborx.Limits{MaxArrayElements: math.MaxInt32, MaxMapPairs: 64, MaxNestedLevels: 8})
