package raftnet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// entryHashDomain prefixes the CBOR bytes of an entry before hashing, so an
// entry hash can never collide with another synapse hash.
const entryHashDomain = "synapse/entry/v1"

// Entry is one execution-log entry as docs/data-model.md defines it. Every
// validator's FSM assigns Seq (dense, from 1) and PrevEntryHash (the Hash of
// the entry before it, "" for Seq 1) identically.
type Entry struct {
	Seq           uint64 `json:"seq"`
	ProposalID    string `json:"proposal_id"`
	Version       string `json:"version"`
	PackageURL    string `json:"package_url"`
	PackageHash   string `json:"package_hash"`
	PackageSize   int64  `json:"package_size"`
	PrevEntryHash string `json:"prev_entry_hash"`
}

// entryCBOR is the hashed form of an Entry: a CBOR map with snake_case keys,
// encoded with the core deterministic rules (RFC 8949 §4.2.1: shortest
// integers, keys sorted by their encoded bytes).
type entryCBOR struct {
	Seq           uint64 `cbor:"seq"`
	ProposalID    string `cbor:"proposal_id"`
	Version       string `cbor:"version"`
	PackageURL    string `cbor:"package_url"`
	PackageHash   string `cbor:"package_hash"`
	PackageSize   int64  `cbor:"package_size"`
	PrevEntryHash string `cbor:"prev_entry_hash"`
}

var detEnc = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	return m
}()

// CanonicalBytes returns the deterministic CBOR encoding of e that Hash
// hashes (without the domain prefix).
func (e Entry) CanonicalBytes() []byte {
	b, err := detEnc.Marshal(entryCBOR(e))
	if err != nil {
		panic(fmt.Sprintf("raftnet: encode entry: %v", err)) // plain strings and ints cannot fail
	}
	return b
}

// Hash is the entry_hash of docs/data-model.md: lowercase hex of
// SHA-256("synapse/entry/v1" ‖ CanonicalBytes()).
func (e Entry) Hash() string {
	h := sha256.New()
	h.Write([]byte(entryHashDomain))
	h.Write(e.CanonicalBytes())
	return hex.EncodeToString(h.Sum(nil))
}

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
