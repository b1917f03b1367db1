package raftnet

import (
	"bytes"
	"io"
	"maps"
	"reflect"
	"testing"
)

// fsmState is a copy of everything an FSM holds.
type fsmState struct {
	Slots      []Slot
	ByProposal map[string]uint64
	Voids      map[string]int
}

func stateOf(f *fsm) fsmState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return fsmState{Slots: append([]Slot{}, f.slots...), ByProposal: maps.Clone(f.byProposal), Voids: maps.Clone(f.voids)}
}

// persist returns the bytes Snapshot and Persist write for f.
func persist(tb testing.TB, f *fsm) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatal(err)
	}
	if sink.cancelled {
		tb.Fatal("persist cancelled the sink")
	}
	return bytes.Clone(sink.Bytes())
}

// fuzzFSM is an FSM with slots, a void, a re-ordered proposal and a void
// count: the state a refused restore must leave alone.
func fuzzFSM(tb testing.TB) *fsm {
	tb.Helper()
	f := newFSM(nil)
	for _, c := range []command{
		{Kind: kindRatify, Ratify: ptr(testRatify("a"))},
		{Kind: kindRatify, Ratify: ptr(testRatify("b"))},
		{Kind: kindRatify, Ratify: ptr(testRatify("c"))},
		{Kind: kindVoid, Void: &voidCommand{Seq: 2}},
		{Kind: kindRatify, Ratify: ptr(testRatify("b"))},
	} {
		b, err := encodeCommand(c)
		if err != nil {
			tb.Fatal(err)
		}
		if err, ok := applyBytes(f, b).(error); ok {
			tb.Fatal(err)
		}
	}
	return f
}

// FuzzRestoreSnapshot: Restore never panics; a refused snapshot leaves the
// FSM as it was; an accepted one has dense slots, one slot per proposal
// and an index that matches them, positive void counts, and snapshots
// back to the same bytes, which restore to the same state.
func FuzzRestoreSnapshot(f *testing.F) {
	base := fuzzFSM(f)
	baseState := stateOf(base)
	baseBytes := persist(f, base)
	f.Add(baseBytes)
	f.Add(persist(f, newFSM(nil)))
	d := base.mustData(f)
	for _, mut := range []func(*snapshotData){
		func(d *snapshotData) { d.Voids = []snapVoid{{pid("x"), 1}, {pid("x"), 2}} },        // one proposal twice
		func(d *snapshotData) { d.Voids = []snapVoid{{pid("y"), 1}, {pid("x"), 1}} },        // unsorted
		func(d *snapshotData) { d.Slots[1].Slot = d.Slots[0].Slot },                         // two slots
		func(d *snapshotData) { d.Slots[2].Seq = 9 },                                        // gap
		func(d *snapshotData) { d.Slots[1].Slot.ProposalID = pid("z") },                     // void with a proposal
		func(d *snapshotData) { d.Voids = append(d.Voids, snapVoid{"", 1}) },                // empty ID
		func(d *snapshotData) { d.V = 1 },                                                   // old version
		func(d *snapshotData) { d.Slots = nil; d.Voids = nil },                              // null lists
		func(d *snapshotData) { d.Slots = append(d.Slots, snapSlot{Seq: 5, Slot: Slot{}}) }, // empty slot
	} {
		c := d
		c.Slots = append([]snapSlot{}, d.Slots...)
		c.Voids = append([]snapVoid{}, d.Voids...)
		mut(&c)
		b, err := detEnc.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte("not cbor"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A copy of base, cheaper than applying its commands again: the
		// fuzzer spends its time in Restore, and minimising a new input
		// (thousands of runs) stays quick.
		fs := newFSM(nil)
		fs.slots = append([]Slot{}, baseState.Slots...)
		fs.byProposal, fs.voids = maps.Clone(baseState.ByProposal), maps.Clone(baseState.Voids)
		before := stateOf(fs)
		if err := fs.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			if got := stateOf(fs); !reflect.DeepEqual(got, before) {
				t.Fatalf("refused restore (%v) changed the state:\n%+v\nwas\n%+v", err, got, before)
			}
			return
		}
		st := stateOf(fs)
		nonVoid := 0
		for i, sl := range st.Slots {
			if sl.Seq != uint64(i)+1 {
				t.Fatalf("slot %d has seq %d", i+1, sl.Seq)
			}
			if err := sl.validate(); err != nil {
				t.Fatalf("slot %d: %v", sl.Seq, err)
			}
			if sl.Void {
				continue
			}
			nonVoid++
			if st.ByProposal[sl.key()] != sl.Seq {
				t.Fatalf("slot key %s: index says seq %d, slot %d", sl.key(), st.ByProposal[sl.key()], sl.Seq)
			}
		}
		if len(st.ByProposal) != nonVoid {
			t.Fatalf("%d proposals indexed for %d slots: a proposal has two slots", len(st.ByProposal), nonVoid)
		}
		for p, n := range st.Voids {
			if p == "" || n <= 0 {
				t.Fatalf("void count %q: %d", p, n)
			}
		}
		again := persist(t, fs)
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted snapshot does not persist back to its bytes:\n%x\n%x", b, again)
		}
		g := newFSM(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(again))); err != nil {
			t.Fatalf("persisted snapshot refused: %v", err)
		}
		if got := stateOf(g); !reflect.DeepEqual(got, st) {
			t.Fatalf("restore of the persisted snapshot differs:\n%+v\n%+v", got, st)
		}
	})
}

// mustData is the snapshot data of f.
func (f *fsm) mustData(tb testing.TB) snapshotData {
	tb.Helper()
	s, err := f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	return s.(*fsmSnapshot).data
}
