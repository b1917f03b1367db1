package raftnet

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// Entry is one execution-log entry as docs/data-model.md defines it. Every
// validator's FSM assigns Seq (dense, from 1) and PrevEntryHash (the Hash of
// the entry before it, "" for Seq 1) identically. The type and its hash are
// shared with gossip through execlog.
type Entry = execlog.Entry

var detEnc = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	return m
}()

var packageHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// NormalizePackageHash turns a package hash given as bare hex or with a
// "sha256:" prefix, in any case, into the entry form "sha256:<64 lowercase
// hex>". It returns an error when the input is not a SHA-256 digest.
func NormalizePackageHash(h string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(h))
	s = strings.TrimPrefix(s, "sha256:")
	n := "sha256:" + s
	if !packageHashRE.MatchString(n) {
		return "", fmt.Errorf("%w: package hash %q is not a SHA-256 hex digest", ErrInvalidCommand, h)
	}
	return n, nil
}

// Slot is one position of the order the validators' raft agreed on: the
// package of an approved proposal, or a void. The validators build the
// execution-log entry at Seq from it (with the hash of the entry that was
// final before it) and decide with their own checks whether to sign.
type Slot struct {
	Seq         uint64 `cbor:"-"`
	Void        bool   `cbor:"void,omitempty"`
	ProposalID  string `cbor:"proposal_id,omitempty"`
	Version     string `cbor:"version,omitempty"`
	PackageURL  string `cbor:"package_url,omitempty"`
	PackageHash string `cbor:"package_hash,omitempty"`
	PackageSize int64  `cbor:"package_size,omitempty"`
}

// validate checks a slot's fields.
func (sl Slot) validate() error {
	if sl.Void {
		if sl.ProposalID != "" || sl.Version != "" || sl.PackageURL != "" || sl.PackageHash != "" || sl.PackageSize != 0 {
			return fmt.Errorf("%w: a void slot carries no proposal", ErrInvalidCommand)
		}
		return nil
	}
	r := Ratify{ProposalID: sl.ProposalID, Version: sl.Version, PackageURL: sl.PackageURL,
		PackageHash: sl.PackageHash, PackageSize: sl.PackageSize, VoteIDs: []string{}, VoteDigest: VoteDigest(nil)}
	return r.Validate()
}

// same reports whether two slots order the same thing.
func (sl Slot) same(o Slot) bool {
	sl.Seq, o.Seq = 0, 0
	return sl == o
}

// slotOf is the slot a ratify command fills.
func slotOf(r Ratify) Slot {
	return Slot{ProposalID: r.ProposalID, Version: r.Version, PackageURL: r.PackageURL,
		PackageHash: r.PackageHash, PackageSize: r.PackageSize}
}
