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
		Body: voteBody{ProposalID: proposalIDFor(op), Choice: ChoiceApproval}})
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
// never accept a message that breaks the protocol's rules.
func FuzzSyncMessages(f *testing.F) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, m := range []any{
		syncRequest{Type: reqIDs, Buckets: []uint16{1, 2}},
		syncRequest{Type: reqOps, Buckets: []uint16{7, 9}, After: append([]byte{7}, make([]byte, 31)...)},
		syncRequest{Type: reqGet, IDs: [][]byte{make([]byte, 32)}},
		syncRequest{Type: reqFingerprint},
		syncReply{Ops: [][]byte{{1, 2, 3}}, Done: 1},
		syncReply{IDs: [][]byte{make([]byte, 32)}, More: true},
		syncReply{Err: "busy"},
	} {
		buf.Reset()
		writeFrame(w, m)
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		payload, err := readFrame(r)
		if err != nil {
			payload = b
		} else if len(payload) > maxFrame {
			t.Fatal("oversize frame accepted")
		}
		if req, err := decodeSyncRequest(payload); err == nil {
			checkRequestRules(t, req)
		}
		if rep, err := decodeSyncReply(payload); err == nil {
			if rep.Err != "" {
				t.Fatal("err reply decoded as a normal reply")
			}
			if rep.FP != nil && len(rep.FP) != fpSize {
				t.Fatal("bad fingerprint accepted")
			}
			if rep.Done < 0 || len(rep.Ops) > maxOpsPerReplyCap || len(rep.IDs) > maxIDsPerReply {
				t.Fatal("out-of-bounds reply accepted")
			}
			for _, id := range rep.IDs {
				if len(id) != 32 {
					t.Fatal("bad ID accepted")
				}
			}
			for _, op := range rep.Ops {
				if len(op) > maxOpSize {
					t.Fatal("oversize op accepted")
				}
			}
		}
	})
}

// checkRequestRules fails t unless req follows docs/protocols.md.
func checkRequestRules(t *testing.T, req *syncRequest) {
	t.Helper()
	switch req.Type {
	case reqFingerprint:
		if req.Buckets != nil || req.IDs != nil || req.After != nil {
			t.Fatal("fp request with arguments accepted")
		}
	case reqIDs, reqOps:
		if req.IDs != nil || len(req.Buckets) == 0 || len(req.Buckets) > 256 {
			t.Fatalf("%s request with %d buckets and %d IDs accepted", req.Type, len(req.Buckets), len(req.IDs))
		}
		for i, b := range req.Buckets {
			if b > 255 || (i > 0 && b <= req.Buckets[i-1]) {
				t.Fatalf("buckets %v accepted", req.Buckets)
			}
		}
		if req.After != nil && (len(req.After) != 32 || uint16(req.After[0]) != req.Buckets[0]) {
			t.Fatal("after outside the first bucket accepted")
		}
	case reqGet:
		if req.Buckets != nil || req.After != nil || len(req.IDs) == 0 || len(req.IDs) > maxOpsPerReplyCap {
			t.Fatal("bad get request accepted")
		}
		for _, id := range req.IDs {
			if len(id) != 32 {
				t.Fatal("bad ID accepted")
			}
		}
	default:
		t.Fatalf("request type %q accepted", req.Type)
	}
}

// FuzzSyncReplyCheck: the client's checks of a reply against its request
// never panic, and a reply they accept follows the protocol: ids/ops
// items strictly ascend after `after`, lie in the buckets the reply
// covers, n and more agree and a cut reply makes progress; get replies
// carry only ops asked for, once each.
func FuzzSyncReplyCheck(f *testing.F) {
	key := newKey(f)
	var ops [][]byte
	for i := 0; i < 6; i++ {
		op, err := encodeOp(key, testNet, opDraft{Kind: KindProposal, Seq: uint64(i + 1), TS: time.Unix(int64(i), 0),
			Body: proposalBody{Type: "code_upgrade", Title: "t", Version: "1.0.1", PackageURL: "ipfs://x",
				PackageHash: "sha256:" + string(bytes.Repeat([]byte("a"), 64)), PackageSize: 1}})
		if err != nil {
			f.Fatal(err)
		}
		ops = append(ops, op.Raw)
	}
	set := newFakeSet(ops)
	enc := func(v any) []byte {
		b, err := encMode.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	var all []uint16
	for b := 0; b < 256; b++ {
		all = append(all, uint16(b))
	}
	first := set.ids[0]
	reqs := []syncRequest{
		{Type: reqIDs, Buckets: all},
		{Type: reqOps, Buckets: all},
		{Type: reqOps, Buckets: all[first[0]:], After: first[:]},
		{Type: reqGet, IDs: [][]byte{set.ids[0][:], set.ids[1][:], set.ids[2][:]}},
	}
	for _, req := range reqs {
		for _, cap := range []int{1, 2, 100} {
			rep := set.answer(&req, cap, cap)
			var err error
			if req.Type == reqGet {
				asked := []OpID{set.ids[0], set.ids[1], set.ids[2]}
				err = checkGetReply(asked, &rep)
			} else {
				_, err = checkRangeReply(&req, &rep)
			}
			if err != nil {
				f.Fatalf("seed %s at cap %d: honest reply refused: %v", req.Type, cap, err)
			}
			f.Add(enc(req), enc(rep))
		}
	}
	f.Fuzz(func(t *testing.T, reqB, repB []byte) {
		req, err := decodeSyncRequest(reqB)
		if err != nil || req.Type == reqFingerprint {
			return
		}
		rep, err := decodeSyncReply(repB)
		if err != nil {
			return
		}
		if req.Type == reqGet {
			asked := make([]OpID, len(req.IDs))
			for i := range req.IDs {
				copy(asked[i][:], req.IDs[i])
			}
			if checkGetReply(asked, rep) != nil {
				return
			}
			if rep.Done < 1 || rep.Done > len(asked) || rep.More != (rep.Done < len(asked)) || len(rep.Ops) > rep.Done {
				t.Fatalf("accepted get reply: n %d of %d, more %v, %d ops", rep.Done, len(asked), rep.More, len(rep.Ops))
			}
			seen := map[OpID]bool{}
			for _, raw := range rep.Ops {
				id := opID0(raw)
				ok := false
				for _, a := range asked[:rep.Done] {
					ok = ok || a == id
				}
				if !ok || seen[id] {
					t.Fatal("accepted get reply with an op not asked for or repeated")
				}
				seen[id] = true
			}
			return
		}
		ids, err := checkRangeReply(req, rep)
		if err != nil {
			return
		}
		nb := len(req.Buckets)
		if rep.Done > nb || rep.More != (rep.Done < nb) {
			t.Fatalf("accepted reply: n %d of %d, more %v", rep.Done, nb, rep.More)
		}
		if rep.More && rep.Done == 0 && len(ids) == 0 {
			t.Fatal("accepted a cut reply without progress")
		}
		in := map[uint16]bool{}
		for _, b := range req.Buckets[:rep.Done] {
			in[b] = true
		}
		if rep.More {
			in[req.Buckets[rep.Done]] = true
		}
		prev := req.After
		for _, id := range ids {
			if prev != nil && bytes.Compare(id[:], prev) <= 0 {
				t.Fatal("accepted items that do not ascend after `after`")
			}
			if !in[uint16(id[0])] {
				t.Fatal("accepted an item outside the covered buckets")
			}
			prev = append([]byte(nil), id[:]...)
		}
	})
}
