package upgrade

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Package describes one upgrade package, as carried by a proposal.
type Package struct {
	ProposalID string `json:"proposal_id"`
	Version    string `json:"version"`
	URL        string `json:"package_url"`
	// SHA256 is "sha256:<hex>" or bare hex, any case.
	SHA256 string `json:"package_hash"`
	// Size is the exact size in bytes; 0 means unknown (the maximum applies).
	Size int64 `json:"package_size"`
	// Rollback marks a package that may lower the version.
	Rollback bool `json:"rollback,omitempty"`
	// Sources are alternative locations of the same bytes, tried in order
	// after URL fails (e.g. ipfs://<cid> URLs that validators announced
	// for the package; node/ is to fill them). They are local hints, not
	// part of the ratified entry: every copy is verified against SHA256
	// and Size, so they change where a node fetches from, never the
	// outcome. A malformed source only fails itself.
	Sources []string `json:"sources,omitempty"`
}

// Entry is one final execution-log entry (docs/data-model.md).
type Entry struct {
	Seq       uint64 `json:"seq"`
	EntryHash string `json:"entry_hash"`
	Package
}

// ParseHash normalises a package hash ("sha256:<hex>" or bare hex, any
// case) to 64 lowercase hex digits.
func ParseHash(s string) (string, error) {
	h := s
	if i := strings.IndexByte(h, ':'); i >= 0 {
		if !strings.EqualFold(h[:i], "sha256") {
			return "", fmt.Errorf("package hash %q: only sha256 is supported", s)
		}
		h = h[i+1:]
	}
	h = strings.ToLower(h)
	if len(h) != 64 {
		return "", fmt.Errorf("package hash %q: want 64 hex digits, got %d characters", s, len(h))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("package hash %q: not hex", s)
	}
	return h, nil
}

// check validates the package's own fields against the network's
// max_package_bytes and returns its normalised hash.
func (p Package) check(maxBytes int64) (string, error) {
	h, err := ParseHash(p.SHA256)
	if err != nil {
		return "", pkgErr(ClassBadPackage, "%v", err)
	}
	if !genesis.ValidVersion(p.Version) {
		return "", pkgErr(ClassBadPackage, "version %q is not a semantic version", p.Version)
	}
	if p.Size < 0 {
		return "", pkgErr(ClassBadPackage, "package_size %d is negative", p.Size)
	}
	if p.Size > maxBytes {
		return "", pkgErr(ClassSizeLimit, "package_size %d exceeds the network's max_package_bytes of %d", p.Size, maxBytes)
	}
	if p.URL == "" {
		return "", pkgErr(ClassBadPackage, "package_url is empty")
	}
	return h, nil
}
