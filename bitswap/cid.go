package bitswap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
)

// ErrInvalidCID is returned by ParseCID.
var ErrInvalidCID = errors.New("bitswap: invalid CID")

// ParseCID reads a package reference: "ipfs://<cid>", "/ipfs/<cid>" or a
// bare CID, either CIDv0 ("Qm…") or CIDv1 in any multibase. Paths inside
// the CID ("ipfs://<cid>/file") are refused: a package is a single file.
func ParseCID(s string) (cid.Cid, error) {
	orig := s
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(strings.ToLower(s), "ipfs://"):
		s = s[len("ipfs://"):]
	case strings.HasPrefix(s, "/ipfs/"):
		s = s[len("/ipfs/"):]
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: %q is empty", ErrInvalidCID, orig)
	}
	if strings.ContainsAny(s, "/?#") {
		return cid.Undef, fmt.Errorf("%w: %q has a path or query; a package is one CID", ErrInvalidCID, orig)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q: %v", ErrInvalidCID, orig, err)
	}
	return c, nil
}
