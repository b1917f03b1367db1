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
