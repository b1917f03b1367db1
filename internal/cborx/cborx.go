// Package cborx holds the one CBOR profile of every synapse-p2p wire and
// disk format (gossip ops and sync messages, raft commands and snapshots,
// execution-log entry hashes): RFC 8949 §4.2.1 core deterministic
// encoding, and a strict decoder that refuses what that encoding never
// produces or a peer should never send.
package cborx

import "github.com/fxamacker/cbor/v2"

// Enc is core deterministic encoding (RFC 8949 §4.2.1): shortest integers
// and lengths, map keys sorted by their encoded bytes (so shorter keys
// first), no indefinite lengths.
var Enc = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options
	}
	return m
}()

// Limits bound one decode, so that a small message cannot make the
// decoder allocate without bound. Each format sets them to what it can
// legitimately hold (see Strict for the allowed ranges).
type Limits struct {
	MaxArrayElements int // elements of one array
	MaxMapPairs      int // pairs of one map
	MaxNestedLevels  int // depth of arrays and maps
}

// Strict returns a decoder for data that must be canonical and exactly of
// the target type: a duplicate map key, a field the target does not have,
// an indefinite length or a tag is an error, and l bounds the sizes.
// Decoding does not prove the bytes canonical (non-shortest integers pass):
// callers re-encode with Enc and compare where one value must have one
// encoding.
//
// It panics if l is out of the ranges fxamacker/cbor allows (arrays and
// maps 16..2^31-1, nesting 4..65535): limits are constants, and callers
// build their decoders once, at package initialisation.
func Strict(l Limits) cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
		MaxNestedLevels:   l.MaxNestedLevels,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic("cborx: " + err.Error())
	}
	return m
}
