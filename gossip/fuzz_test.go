package gossip

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeOp: the op decoder never panics, and whatever it accepts
// re-encodes to exactly the same bytes with the same ID.
func FuzzDecodeOp(f *testing.F) {
	key := newKey(f)
	op, err := encodeOp(key, testNet, opDraft{Kind: KindProposal, Seq: 1, Lamport: 1, TS: time.Unix(1, 0),
		Body: proposalBody{Type: "code_upgrade", Title: "t", Version: "1.0.1", PackageURL: "ipfs://x",
			PackageHash: "sha256:" + string(bytes.Repeat([]byte("a"), 64)), PackageSize: 1}})
	if err != nil {
		f.Fatal(err)
	}
	vote, err := encodeOp(key, testNet, opDraft{Kind: KindVote, Seq: 2, Deps: []OpID{op.ID},
		Body: voteBody{ProposalID: ProposalIDFor(op), Choice: ChoiceApproval}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(op.Raw)
	f.Add(vote.Raw)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := DecodeOp(raw, testNet)
		if err != nil {
			return
		}
		if !bytes.Equal(got.Raw, raw) {
			t.Fatal("accepted op does not keep its bytes")
		}
		var w wireOp
		if err := decodeStrict(raw, &w); err != nil {
			t.Fatalf("accepted op is not canonical: %v", err)
		}
		if opID(w.Op) != got.ID {
			t.Fatal("ID mismatch")
		}
	})
}

// FuzzSyncMessages: the sync framing and message decoders never panic and
// never accept out-of-bounds messages.
func FuzzSyncMessages(f *testing.F) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	writeFrame(w, syncRequest{Type: reqIDs, Buckets: []uint16{1, 2}})
	f.Add(buf.Bytes())
	buf.Reset()
	writeFrame(w, syncReply{Ops: [][]byte{{1, 2, 3}}, Done: 1})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		payload, err := readFrame(r)
		if err != nil {
			payload = b
		}
		if req, err := decodeSyncRequest(payload); err == nil {
			if len(req.Buckets) > 256 || len(req.IDs) > maxOpsPerReplyCap {
				t.Fatal("oversized request accepted")
			}
			for _, id := range req.IDs {
				if len(id) != 32 {
					t.Fatal("bad ID accepted")
				}
			}
		}
		if rep, err := decodeSyncReply(payload); err == nil {
			if rep.FP != nil && len(rep.FP) != fpSize {
				t.Fatal("bad fingerprint accepted")
			}
			for _, op := range rep.Ops {
				if len(op) > MaxOpSize {
					t.Fatal("oversize op accepted")
				}
			}
		}
	})
}
