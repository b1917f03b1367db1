package raftnet

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func testRatify(id string) Ratify {
	r, err := RatifyFromCandidate(Candidate{
		ProposalID: id, Version: "1.2.0", PackageURL: "ipfs://bafk",
		PackageHash: "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
		PackageSize: 42, VoteIDs: []string{"c", "a", "b", "a"},
		Approval: 3, Rejection: 1, Eligible: 4,
	})
	if err != nil {
		panic(err)
	}
	return r
}

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
	if strings.Join(r.VoteIDs, ",") != "a,b,c" || r.VoteDigest != VoteDigest([]string{"a", "b", "c"}) {
		t.Errorf("votes = %v digest %s", r.VoteIDs, r.VoteDigest)
	}
	c := r.Candidate()
	if c.ProposalID != "p1" || c.Approval != 3 || len(c.VoteIDs) != 3 {
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
	es := f.entries()
	if len(es) != 3 {
		t.Fatalf("entries = %d, want 3", len(es))
	}
	prev := ""
	for i, e := range es {
		if e.Seq != uint64(i+1) || e.PrevEntryHash != prev {
			t.Errorf("entry %d = %+v, prev want %q", i, e, prev)
		}
		prev = e.Hash()
	}
	if es[0].ProposalID != "p1" || es[1].ProposalID != "p2" || es[2].ProposalID != "p3" {
		t.Errorf("order = %v", es)
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
	cases := map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not cbor"),
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"bad digest":     badDigest,
		"bad version":    badVersion,
		"unknown kind":   unknownKind,
		"missing fields": nonCanon,
		"oversize":       bytes.Repeat([]byte{0}, MaxCommandSize+1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFSM(nil)
			err, ok := applyBytes(f, b).(error)
			if !ok || !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("apply = %v, want ErrInvalidCommand", err)
			}
			if len(f.entries()) != 0 {
				t.Fatal("a bad command created an entry")
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
	if a, b := f.entries(), g.entries(); len(b) != 3 || a[2] != b[2] {
		t.Fatalf("restored %v, want %v", b, a)
	}
	if res := applyBytes(g, mustEncode(t, testRatify("b"))).(ApplyResult); !res.Duplicate {
		t.Error("restored FSM lost its proposal index")
	}
	// Corrupt snapshots are refused and leave the state alone.
	h := newFSM(nil)
	applyBytes(h, mustEncode(t, testRatify("z")))
	for name, b := range map[string][]byte{"garbage": []byte("xx"), "truncated": raw[:len(raw)/2]} {
		if err := h.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	broken := snapshotData{V: 1, Records: append([]record(nil), f.records...)}
	broken.Records[1].Entry.PrevEntryHash = strings.Repeat("0", 64)
	b, _ := detEnc.Marshal(broken)
	if err := h.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("broken chain: err = %v", err)
	}
	if es := h.entries(); len(es) != 1 || es[0].ProposalID != "z" {
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
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
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
