package raftnet

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func testRatify(id string) Ratify {
	r, err := RatifyFromCandidate(Candidate{
		ProposalID: pid(id), Version: "1.2.0", PackageURL: "ipfs://bafk",
		PackageHash: "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
		PackageSize: 42, VoteIDs: []string{"c", "a", "b", "a"},
		Approval: 3, Rejection: 1, Eligible: 4,
	})
	if err != nil {
		panic(err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func applyBytes(f *fsm, b []byte) any { return f.Apply(&raft.Log{Type: raft.LogCommand, Data: b}) }

func mustEncode(t *testing.T, r Ratify) []byte {
	t.Helper()
	b, err := encodeRatify(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRatifyFromCandidateNormalises(t *testing.T) {
	r := testRatify("p1")
	if r.PackageHash != "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("package hash = %s", r.PackageHash)
	}
	if strings.Join(r.VoteIDs, ",") != "a,b,c" || r.VoteDigest != voteDigest([]string{"a", "b", "c"}) {
		t.Errorf("votes = %v digest %s", r.VoteIDs, r.VoteDigest)
	}
	c := r.Candidate()
	if c.ProposalID != pid("p1") || c.Approval != 3 || len(c.VoteIDs) != 3 {
		t.Errorf("candidate = %+v", c)
	}
}

func TestFSMDenseSeqChainAndNoDuplicates(t *testing.T) {
	f := newFSM(nil)
	for i, id := range []string{"p1", "p2", "p1", "p3", "p2"} {
		res := applyBytes(f, mustEncode(t, testRatify(id)))
		ar, ok := res.(ApplyResult)
		if !ok {
			t.Fatalf("apply %d: %v", i, res)
		}
		if dup := i == 2 || i == 4; ar.Duplicate != dup {
			t.Errorf("apply %d (%s): duplicate=%v", i, id, ar.Duplicate)
		}
	}
	es := f.all()
	if len(es) != 3 {
		t.Fatalf("slots = %d, want 3", len(es))
	}
	checkLog(t, "fsm", es, "p1", "p2", "p3")
	if name(es[0].ProposalID) != "p1" || name(es[1].ProposalID) != "p2" || name(es[2].ProposalID) != "p3" {
		t.Errorf("order = %v", es)
	}
}

// Void and Set: a voided slot frees its proposal (ordered again at a new
// slot), is counted, and maxVoids voids stop a proposal for good; a Set
// aligns a slot with the final entry and keeps one slot per proposal.
func TestFSMVoidAndSet(t *testing.T) {
	f := newFSM(nil)
	apply := func(c command) any {
		t.Helper()
		b, err := encodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		return applyBytes(f, b)
	}
	ratify := func(id string) any { return apply(command{Kind: kindRatify, Ratify: ptr(testRatify(id))}) }
	ratify("p1")
	ratify("p2")
	if res := apply(command{Kind: kindVoid, Void: &voidCommand{Seq: 1}}).(ApplyResult); res.Seq != 1 || res.Duplicate {
		t.Fatalf("void: %+v", res)
	}
	if res := apply(command{Kind: kindVoid, Void: &voidCommand{Seq: 1}}).(ApplyResult); !res.Duplicate {
		t.Fatal("voiding a void slot changed something")
	}
	if err, ok := apply(command{Kind: kindVoid, Void: &voidCommand{Seq: 9}}).(error); !ok || !errors.Is(err, errInvalidCommand) {
		t.Fatalf("void beyond the last slot: %v", err)
	}
	if sl, _ := f.slot(1); !sl.Void || sl.Seq != 1 {
		t.Fatalf("slot 1 = %+v", sl)
	}
	// p1 is free again: a new slot.
	if res := ratify("p1").(ApplyResult); res.Seq != 3 || res.Duplicate {
		t.Fatalf("p1 again: %+v", res)
	}
	// Set slot 1 to p2 (final there): p2's own slot 2 is voided.
	p2 := slotOf(testRatify("p2"))
	if res := apply(command{Kind: kindSet, Set: &setCommand{Seq: 1, Slot: p2}}).(ApplyResult); res.Seq != 1 {
		t.Fatalf("set: %+v", res)
	}
	if sl, _ := f.slot(1); sl.ProposalID != pid("p2") {
		t.Fatalf("slot 1 after set = %+v", sl)
	}
	if sl, _ := f.slot(2); !sl.Void {
		t.Fatalf("p2 kept a second slot: %+v", sl)
	}
	if res := apply(command{Kind: kindSet, Set: &setCommand{Seq: 1, Slot: p2}}).(ApplyResult); !res.Duplicate {
		t.Fatal("setting the same slot again changed something")
	}
	if err, ok := apply(command{Kind: kindSet, Set: &setCommand{Seq: 10, Slot: p2}}).(error); !ok || !errors.Is(err, errInvalidCommand) {
		t.Fatalf("set far beyond the slots: %v", err)
	}
	// A proposal voided maxVoids times is refused.
	for i := 0; i < maxVoids; i++ {
		res := ratify("p9")
		ar, ok := res.(ApplyResult)
		if !ok {
			t.Fatalf("ratify p9 #%d: %v", i, res)
		}
		apply(command{Kind: kindVoid, Void: &voidCommand{Seq: ar.Seq}})
	}
	if err, ok := ratify("p9").(error); !ok || !errors.Is(err, errInvalidCommand) {
		t.Fatalf("p9 after %d voids: %v", maxVoids, err)
	}
}

func TestFSMRejectsBadCommands(t *testing.T) {
	good := mustEncode(t, testRatify("p1"))
	r := testRatify("p1")
	r.VoteDigest = strings.Repeat("0", 64)
	badDigest, _ := detEnc.Marshal(command{V: 1, Kind: kindRatify, Ratify: &r})
	r = testRatify("p1")
	r.Version = "one"
	badVersion, _ := detEnc.Marshal(command{V: 1, Kind: kindRatify, Ratify: &r})
	r = testRatify("p1")
	unknownKind, _ := detEnc.Marshal(command{V: 1, Kind: "evil", Ratify: &r})
	nonCanon, _ := detEnc.Marshal(map[string]any{"v": uint(1), "kind": kindRatify, "ratify": map[string]any{}})
	r = testRatify("p1")
	r.ProposalID = "upgrade_20260101_120000_0a1b2c3d" // the short alias: gossip could not hold it
	shortID, _ := detEnc.Marshal(command{V: 1, Kind: kindRatify, Ratify: &r})
	r = testRatify("p1")
	twoKinds, _ := detEnc.Marshal(command{V: 1, Kind: kindRatify, Ratify: &r, Void: &voidCommand{Seq: 1}})
	cases := map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not cbor"),
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"bad digest":     badDigest,
		"bad version":    badVersion,
		"unknown kind":   unknownKind,
		"missing fields": nonCanon,
		"short ID":       shortID,
		"two kinds":      twoKinds,
		"oversize":       bytes.Repeat([]byte{0}, maxCommandSize+1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFSM(nil)
			err, ok := applyBytes(f, b).(error)
			if !ok || !errors.Is(err, errInvalidCommand) {
				t.Fatalf("apply = %v, want errInvalidCommand", err)
			}
			if len(f.all()) != 0 {
				t.Fatal("a bad command created a slot")
			}
		})
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM(nil)
	for _, id := range []string{"a", "b", "c"} {
		applyBytes(f, mustEncode(t, testRatify(id)))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), sink.Bytes()...)
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	if a, b := f.all(), g.all(); len(b) != 3 || a[2] != b[2] {
		t.Fatalf("restored %v, want %v", b, a)
	}
	if res := applyBytes(g, mustEncode(t, testRatify("b"))).(ApplyResult); !res.Duplicate {
		t.Error("restored FSM lost its proposal index")
	}
	// Corrupt snapshots are refused and leave the state alone.
	h := newFSM(nil)
	applyBytes(h, mustEncode(t, testRatify("z")))
	for name, b := range map[string][]byte{"garbage": []byte("xx"), "truncated": raw[:len(raw)/2]} {
		t.Run(name, func(t *testing.T) {
			if err := h.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, errCorruptSnapshot) {
				t.Errorf("err = %v", err)
			}
		})
	}
	fs, _ := f.Snapshot()
	for name, mut := range map[string]func(*snapshotData){
		"gap":           func(d *snapshotData) { d.Slots[1].Seq = 7 },
		"two slots":     func(d *snapshotData) { d.Slots[1].Slot = d.Slots[0].Slot },
		"bad slot":      func(d *snapshotData) { d.Slots[1].Slot.PackageHash = "md5" },
		"bad void":      func(d *snapshotData) { d.Voids = []snapVoid{{"x", -1}} },
		"wrong version": func(d *snapshotData) { d.V = 9 },
		// Persist never writes these (FuzzRestoreSnapshot): each would
		// restore to a state that snapshots to other bytes.
		"void twice":      func(d *snapshotData) { d.Voids = []snapVoid{{pid("x"), 1}, {pid("x"), 2}} },
		"voids unsorted":  func(d *snapshotData) { d.Voids = []snapVoid{{pid("y"), 1}, {pid("x"), 1}} },
		"null slots":      func(d *snapshotData) { d.Slots = nil },
		"null void array": func(d *snapshotData) { d.Voids = nil },
	} {
		t.Run(name, func(t *testing.T) {
			d := fs.(*fsmSnapshot).data
			d.Slots = slices.Clone(d.Slots)
			mut(&d)
			b, _ := detEnc.Marshal(d)
			if err := h.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, errCorruptSnapshot) {
				t.Errorf("err = %v", err)
			}
		})
	}
	// The same state in a non-minimal CBOR encoding (v as 0x18 0x02).
	if !bytes.HasPrefix(raw, []byte{0xa3, 0x61, 'v', 0x02}) {
		t.Fatalf("snapshot starts %x", raw[:4])
	}
	long := append([]byte{0xa3, 0x61, 'v', 0x18, 0x02}, raw[4:]...)
	if err := h.Restore(io.NopCloser(bytes.NewReader(long))); !errors.Is(err, errCorruptSnapshot) {
		t.Errorf("non-canonical: err = %v", err)
	}
	if es := h.all(); len(es) != 1 || name(es[0].ProposalID) != "z" {
		t.Errorf("state changed by a refused restore: %v", es)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Dir, ok.NetworkID = t.TempDir(), "net"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no dir":        func(c *Config) { c.Dir = "" },
		"no net":        func(c *Config) { c.NetworkID = "" },
		"lease > hb":    func(c *Config) { c.LeaderLeaseTimeout = c.HeartbeatTimeout * 2 },
		"election < hb": func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 },
		"retry":         func(c *Config) { c.RetryMax = c.RetryMin / 2 },
		"poll":          func(c *Config) { c.PollInterval = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func FuzzDecodeRatify(f *testing.F) {
	f.Add(mustEncodeF(testRatify("p1")))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRatify(b)
		if err != nil {
			return
		}
		again, err := encodeRatify(r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted bytes do not round-trip: %v", err)
		}
	})
}

func mustEncodeF(r Ratify) []byte {
	b, err := encodeRatify(r)
	if err != nil {
		panic(err)
	}
	return b
}
