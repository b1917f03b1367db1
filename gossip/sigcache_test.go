package gossip

import (
	"errors"
	"testing"
)

// A signature cache never turns a forged op into a valid one: a cached
// signature counts only for the exact op it verified, a tampered signature
// or body is verified (and refused) as without the cache, and a refused op
// is not remembered.
func TestSignatureCache(t *testing.T) {
	enc := func(i int) []byte { return signedProposal(t, testNet, i).Raw }
	raw := enc(1)
	sigs := NewSignatureCache(10)
	op, err := decodeOp(raw, testNet, sigs)
	if err != nil {
		t.Fatal(err)
	}
	if !sigs.verified(op.ID, signatureOf(t, raw)) {
		t.Fatal("a verified op is not remembered")
	}
	if _, err := decodeOp(raw, testNet, sigs); err != nil {
		t.Fatalf("cached op: %v", err)
	}

	// The same signature on other bytes, other bytes for the same op ID's
	// signature: both verified, both refused, neither remembered.
	forged := withSignature(t, enc(2), signatureOf(t, raw))
	if _, err := decodeOp(forged, testNet, sigs); !errors.Is(err, errBadSignature) {
		t.Fatalf("op with another op's signature: %v", err)
	}
	bad := withSignature(t, raw, flipped(signatureOf(t, raw)))
	if _, err := decodeOp(bad, testNet, sigs); !errors.Is(err, errBadSignature) {
		t.Fatalf("op with a tampered signature: %v", err)
	}
	if len(sigs.ok) != 1 {
		t.Fatalf("cache holds %d entries, want only the verified op", len(sigs.ok))
	}

	// Full: it starts over rather than grow.
	small := NewSignatureCache(1)
	small.add(OpID{1}, make([]byte, 64))
	small.add(OpID{2}, make([]byte, 64))
	if len(small.ok) != 1 || !small.verified(OpID{2}, make([]byte, 64)) {
		t.Fatalf("bounded cache: %d entries", len(small.ok))
	}
	// A nil cache verifies everything.
	var none *SignatureCache
	if none.verified(op.ID, signatureOf(t, raw)) {
		t.Fatal("nil cache claims a verification")
	}
}

func signatureOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	return w.Sig
}

func withSignature(t *testing.T, raw, sig []byte) []byte {
	t.Helper()
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	w.Sig = sig
	out, err := encMode.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flipped(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[0] ^= 1
	return out
}
