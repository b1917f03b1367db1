package raftnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// ApplyResult is what the FSM returns for a command.
type ApplyResult struct {
	Seq       uint64 // the slot the command filled or changed
	Duplicate bool   // nothing changed (the proposal already has a slot, the slot already is so)
}

// fsm orders commands into slots. Its state depends on nothing but the
// raft log: no clock, no map iteration, no randomness.
type fsm struct {
	mu         sync.RWMutex
	slots      []Slot            // slot i has Seq i+1
	byProposal map[string]uint64 // slot key (action/proposal ID) -> seq of its (non-void) slot
	voids      map[string]int    // proposal ID -> how often its slot was voided

	notify chan struct{} // signalled (non-blocking) after a change
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(applied chan struct{}) *fsm {
	if applied == nil {
		applied = make(chan struct{}, 1)
	}
	return &fsm{byProposal: map[string]uint64{}, voids: map[string]int{}, notify: applied}
}

// Apply implements raft.FSM. It returns an ApplyResult or an error wrapping
// errInvalidCommand; it never panics on bad input.
func (f *fsm) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	res, err := f.applyLocked(c)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if !res.Duplicate {
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}
	return res
}

func (f *fsm) applyLocked(c command) (ApplyResult, error) {
	switch {
	case c.Ratify != nil:
		sl := slotOf(*c.Ratify)
		p := sl.key()
		if seq, ok := f.byProposal[p]; ok {
			return ApplyResult{Seq: seq, Duplicate: true}, nil
		}
		if f.voids[p] >= maxVoids {
			return ApplyResult{}, fmt.Errorf("%w: %s was voided %d times", errInvalidCommand, p, f.voids[p])
		}
		sl.Seq = uint64(len(f.slots)) + 1
		f.slots = append(f.slots, sl)
		f.byProposal[p] = sl.Seq
		return ApplyResult{Seq: sl.Seq}, nil
	case c.Void != nil:
		seq := c.Void.Seq
		if seq > uint64(len(f.slots)) {
			return ApplyResult{}, fmt.Errorf("%w: void of seq %d beyond the last slot %d", errInvalidCommand, seq, len(f.slots))
		}
		if f.slots[seq-1].Void {
			return ApplyResult{Seq: seq, Duplicate: true}, nil
		}
		f.voidLocked(seq)
		return ApplyResult{Seq: seq}, nil
	case c.Set != nil:
		seq, sl := c.Set.Seq, c.Set.Slot
		sl.Seq = seq
		switch {
		case seq > uint64(len(f.slots))+1:
			return ApplyResult{}, fmt.Errorf("%w: set of seq %d beyond the next slot %d", errInvalidCommand, seq, len(f.slots)+1)
		case seq <= uint64(len(f.slots)) && f.slots[seq-1].same(sl):
			return ApplyResult{Seq: seq, Duplicate: true}, nil
		}
		if seq <= uint64(len(f.slots)) {
			if old := f.slots[seq-1]; !old.Void {
				delete(f.byProposal, old.key())
			}
		} else {
			f.slots = append(f.slots, Slot{})
		}
		if !sl.Void {
			if other, ok := f.byProposal[sl.key()]; ok && other != seq {
				f.voidLocked(other) // one proposal and action, one slot
			}
			f.byProposal[sl.key()] = seq
		}
		f.slots[seq-1] = sl
		return ApplyResult{Seq: seq}, nil
	}
	return ApplyResult{}, fmt.Errorf("%w: empty command", errInvalidCommand)
}

func (f *fsm) voidLocked(seq uint64) {
	old := f.slots[seq-1]
	if old.Void {
		return
	}
	delete(f.byProposal, old.key())
	f.voids[old.key()]++
	f.slots[seq-1] = Slot{Seq: seq, Void: true}
}

// all returns a copy of the slots in seq order.
func (f *fsm) all() []Slot {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]Slot(nil), f.slots...)
}

// slot returns the slot with the given seq.
func (f *fsm) slot(seq uint64) (Slot, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if seq == 0 || seq > uint64(len(f.slots)) {
		return Slot{}, false
	}
	return f.slots[seq-1], true
}

// has reports whether the candidate's proposal and action have a slot.
func (f *fsm) has(c Candidate) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.byProposal[candKey(c)]
	return ok
}

// snapshotData is the persisted form of the FSM.
type snapshotData struct {
	V     uint       `cbor:"v"`
	Slots []snapSlot `cbor:"slots"`
	Voids []snapVoid `cbor:"voids"`
}

type snapSlot struct {
	Seq  uint64 `cbor:"seq"`
	Slot Slot   `cbor:"slot"`
}

type snapVoid struct {
	ProposalID string `cbor:"proposal_id"`
	Count      int    `cbor:"count"`
}

const snapshotVersion = 2

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d := snapshotData{V: snapshotVersion, Slots: make([]snapSlot, len(f.slots)), Voids: []snapVoid{}}
	for i, sl := range f.slots {
		d.Slots[i] = snapSlot{Seq: sl.Seq, Slot: sl}
	}
	for p, n := range f.voids {
		d.Voids = append(d.Voids, snapVoid{p, n})
	}
	sortVoids(d.Voids)
	return &fsmSnapshot{data: d}, nil
}

func sortVoids(v []snapVoid) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].ProposalID < v[j-1].ProposalID; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// Restore implements raft.FSM. It checks the snapshot before it replaces
// the state (errCorruptSnapshot).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<30))
	if err != nil {
		return fmt.Errorf("raftnet: read snapshot: %w", err)
	}
	slots, by, voids, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.slots, f.byProposal, f.voids = slots, by, voids
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

// errCorruptSnapshot is returned when a snapshot does not decode, is not
// exactly what Persist writes for its state (canonical CBOR, void counts
// sorted and one per proposal), or its slots are not dense, valid and one
// per proposal.
var errCorruptSnapshot = errors.New("raftnet: corrupt snapshot")

func decodeSnapshot(b []byte) ([]Slot, map[string]uint64, map[string]int, error) {
	var s snapshotData
	if err := snapDec.Unmarshal(b, &s); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", errCorruptSnapshot, err)
	}
	if s.V != snapshotVersion {
		return nil, nil, nil, fmt.Errorf("%w: version %d", errCorruptSnapshot, s.V)
	}
	if s.Slots == nil || s.Voids == nil {
		return nil, nil, nil, fmt.Errorf("%w: slots and voids must be arrays", errCorruptSnapshot)
	}
	slots := make([]Slot, len(s.Slots))
	by := map[string]uint64{}
	for i, ss := range s.Slots {
		sl := ss.Slot
		sl.Seq = ss.Seq
		if ss.Seq != uint64(i)+1 {
			return nil, nil, nil, fmt.Errorf("%w: slot %d has seq %d", errCorruptSnapshot, i+1, ss.Seq)
		}
		if err := sl.validate(); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: slot %d: %v", errCorruptSnapshot, i+1, err)
		}
		if !sl.Void {
			if _, dup := by[sl.key()]; dup {
				return nil, nil, nil, fmt.Errorf("%w: %s has two slots", errCorruptSnapshot, sl.key())
			}
			by[sl.key()] = sl.Seq
		}
		slots[i] = sl
	}
	voids := map[string]int{}
	for i, v := range s.Voids {
		if v.Count <= 0 || v.ProposalID == "" {
			return nil, nil, nil, fmt.Errorf("%w: void count %+v", errCorruptSnapshot, v)
		}
		if i > 0 && v.ProposalID <= s.Voids[i-1].ProposalID {
			return nil, nil, nil, fmt.Errorf("%w: void counts not sorted and unique at %q", errCorruptSnapshot, v.ProposalID)
		}
		voids[v.ProposalID] = v.Count
	}
	// One state, one encoding: what Persist would write for this state.
	if again, err := detEnc.Marshal(s); err != nil || !bytes.Equal(again, b) {
		return nil, nil, nil, fmt.Errorf("%w: not in the canonical form Persist writes", errCorruptSnapshot)
	}
	return slots, by, voids, nil
}

type fsmSnapshot struct{ data snapshotData }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := detEnc.Marshal(s.data)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("raftnet: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// candKey is the slot key of what a candidate orders.
func candKey(c Candidate) string { return c.Action + "/" + c.ProposalID }
