package gossip

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// The entry-hash test vector published in docs/data-model.md and
// docs/protocols.md.
var vectorEntry = execlog.Entry{Seq: 2, ProposalID: "upgrade_20260101_120000_0a1b2c3d", Version: "1.2.0",
	PackageURL:  "ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
	PackageHash: "sha256:" + strings.Repeat("ab", 32), PackageSize: 4096,
	PrevEntryHash: strings.Repeat("0f", 32)}

const vectorEntryHash = "88892222ea9a302c50998bec0a4fe710c7cd9150f925a75ccec64feadd6eb66f"

func TestEntryHashVector(t *testing.T) {
	got := vectorEntry.Hash()
	t.Logf("cbor %s", hex.EncodeToString(vectorEntry.CanonicalBytes()))
	if got != vectorEntryHash {
		t.Fatalf("entry hash %s, want %s", got, vectorEntryHash)
	}
	// Field order in the struct does not matter: keys are sorted.
	m := map[string]any{"seq": uint64(2), "proposal_id": vectorEntry.ProposalID, "version": "1.2.0",
		"package_url": vectorEntry.PackageURL, "package_hash": vectorEntry.PackageHash,
		"package_size": int64(4096), "prev_entry_hash": vectorEntry.PrevEntryHash}
	b, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, vectorEntry.CanonicalBytes()) {
		t.Fatal("map and struct encodings differ")
	}
}

func signedProposal(t *testing.T, net string, i int) *Op {
	t.Helper()
	b := testBody(i)
	op, err := encodeOp(newKey(t), net, opDraft{Kind: KindProposal, Seq: 1, Lamport: 1,
		TS: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Body: proposalBody{Type: "code_upgrade",
			Title: b.Title, Description: b.Description, Version: b.Version, PackageURL: b.PackageURL,
			PackageHash: b.PackageHash, PackageSize: b.PackageSize}})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func TestOpRoundTripAndIDs(t *testing.T) {
	op := signedProposal(t, testNet, 1)
	again, err := DecodeOp(op.Raw, testNet)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != op.ID || *again.Proposal != *op.Proposal || again.Author != op.Author {
		t.Fatal("round trip changed the op")
	}
	id := proposalIDFor(op)
	if !strings.HasPrefix(id, "upgrade_20260102_030405_") || id[len(id)-32:] != op.ID.String()[:32] || !execlog.ValidProposalID(id) {
		t.Fatalf("proposal ID %s", id)
	}
	if short := shortProposalID(op); short != id[:len(id)-24] {
		t.Fatalf("short ID %s of %s", short, id)
	}
	// The ID covers the unsigned bytes only.
	var w wireOp
	if err := decMode.Unmarshal(op.Raw, &w); err != nil {
		t.Fatal(err)
	}
	if opID(w.Op) != op.ID {
		t.Fatal("op ID is not the hash of the unsigned bytes")
	}
}

func TestDecodeRejects(t *testing.T) {
	op := signedProposal(t, testNet, 1)
	forged := append([]byte(nil), op.Raw...)
	forged[len(forged)-1] ^= 1 // last byte is in the signature
	// Non-canonical: a length header in a longer form than needed. The wire
	// op is a 2-entry map (0xa2); re-encode the same map with the first key
	// "op" as a text string with a 1-byte length (0x78 0x02).
	nonCanon := append([]byte{0xa2, 0x78, 0x02}, op.Raw[2:]...)
	// Unsorted keys: swap "op" and "sig" entries.
	var w wireOp
	if err := decMode.Unmarshal(op.Raw, &w); err != nil {
		t.Fatal(err)
	}
	unsorted, _ := cbor.Marshal(struct {
		Sig []byte          `cbor:"sig"`
		Op  cbor.RawMessage `cbor:"op"`
	}{w.Sig, w.Op})
	extra, _ := encMode.Marshal(struct {
		Op  cbor.RawMessage `cbor:"op"`
		Sig []byte          `cbor:"sig"`
		X   int             `cbor:"x"`
	}{w.Op, w.Sig, 1})
	unknownKind, err := encodeOp(newKey(t), testNet, opDraft{Kind: "bogus", Seq: 1, Body: map[string]int{}})
	if err == nil || unknownKind != nil {
		t.Fatal("encoding an unknown kind should fail to decode")
	}
	cases := []struct {
		name string
		raw  []byte
		net  string
		want error
	}{
		{"forged signature", forged, testNet, errBadSignature},
		{"wrong network", op.Raw, "ffffffffffffffff", errWrongNetwork},
		{"non-minimal length", nonCanon, testNet, ErrInvalidOp},
		{"unsorted keys", unsorted, testNet, errNonCanonical},
		{"unknown field", extra, testNet, ErrInvalidOp},
		{"oversize", make([]byte, maxOpSize+1), testNet, errOversize},
		{"empty", nil, testNet, ErrInvalidOp},
		{"garbage", []byte("hello world"), testNet, ErrInvalidOp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeOp(c.raw, c.net)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := encodeOp(newKey(t), testNet, opDraft{Kind: KindProposal, Seq: 1, Body: proposalBody{Type: "code_upgrade", Title: strings.Repeat("x", maxOpSize)}}); !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("oversize body: %v", err)
	}
}

func TestNormalizeChoice(t *testing.T) {
	for in, want := range map[string]string{"yes": ChoiceApproval, "Approval": ChoiceApproval, "no": ChoiceRejection, "rejection": ChoiceRejection} {
		t.Run(in, func(t *testing.T) {
			got, err := normalizeChoice(in)
			if err != nil || got != want {
				t.Fatalf("got %s, %v; want %s", got, err, want)
			}
		})
	}
	if _, err := normalizeChoice("maybe"); !errors.Is(err, ErrBadChoice) {
		t.Fatal(err)
	}
}
