package raftnet

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// record is one committed entry together with the command that made it.
type record struct {
	Entry  Entry  `cbor:"entry"`
	Ratify Ratify `cbor:"ratify"`
}

// ApplyResult is what the FSM returns for a Ratify command.
type ApplyResult struct {
	Seq       uint64 // the proposal's entry
	Duplicate bool   // the proposal already had an entry; nothing changed
}

// fsm orders Ratify commands into the execution log. Its state is only the
// list of records; it depends on nothing but the raft log.
type fsm struct {
	mu         sync.RWMutex
	records    []record
	byProposal map[string]uint64 // proposal ID -> seq

	notify chan struct{} // signalled (non-blocking) after a new entry
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(applied chan struct{}) *fsm {
	if applied == nil {
		applied = make(chan struct{}, 1)
	}
	return &fsm{byProposal: map[string]uint64{}, notify: applied}
}

// Apply implements raft.FSM. It returns an ApplyResult or an error wrapping
// ErrInvalidCommand; it never panics on bad input.
func (f *fsm) Apply(l *raft.Log) any {
	r, err := decodeRatify(l.Data)
	if err != nil {
		return err
	}
	return f.apply(r)
}

func (f *fsm) apply(r Ratify) ApplyResult {
	f.mu.Lock()
	if seq, ok := f.byProposal[r.ProposalID]; ok {
		f.mu.Unlock()
		return ApplyResult{Seq: seq, Duplicate: true}
	}
	e := Entry{
		Seq:         uint64(len(f.records)) + 1,
		ProposalID:  r.ProposalID,
		Version:     r.Version,
		PackageURL:  r.PackageURL,
		PackageHash: r.PackageHash,
		PackageSize: r.PackageSize,
	}
	if n := len(f.records); n > 0 {
		e.PrevEntryHash = f.records[n-1].Entry.Hash()
	}
	f.records = append(f.records, record{Entry: e, Ratify: r})
	f.byProposal[r.ProposalID] = e.Seq
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return ApplyResult{Seq: e.Seq}
}

// entries returns a copy of the committed entries in seq order.
func (f *fsm) entries() []Entry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Entry, len(f.records))
	for i, r := range f.records {
		out[i] = r.Entry
	}
	return out
}

// record returns the record with the given seq.
func (f *fsm) record(seq uint64) (record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if seq == 0 || seq > uint64(len(f.records)) {
		return record{}, false
	}
	return f.records[seq-1], true
}

func (f *fsm) has(proposalID string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.byProposal[proposalID]
	return ok
}

// snapshotData is the persisted form of the FSM.
type snapshotData struct {
	V       uint     `cbor:"v"`
	Records []record `cbor:"records"`
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{records: append([]record(nil), f.records...)}, nil
}

// Restore implements raft.FSM. It checks that seqs are dense and that the
// hash chain holds before it replaces the state.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<30))
	if err != nil {
		return fmt.Errorf("raftnet: read snapshot: %w", err)
	}
	recs, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	by := make(map[string]uint64, len(recs))
	for _, r := range recs {
		by[r.Entry.ProposalID] = r.Entry.Seq
	}
	f.mu.Lock()
	f.records, f.byProposal = recs, by
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

// ErrCorruptSnapshot is returned when a snapshot does not decode or its
// entries do not form a dense hash chain.
var ErrCorruptSnapshot = errors.New("raftnet: corrupt snapshot")

func decodeSnapshot(b []byte) ([]record, error) {
	var s snapshotData
	if err := snapDec.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	if s.V != commandVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptSnapshot, s.V)
	}
	prev := ""
	seen := map[string]bool{}
	for i, r := range s.Records {
		e := r.Entry
		if e.Seq != uint64(i)+1 || e.PrevEntryHash != prev || seen[e.ProposalID] {
			return nil, fmt.Errorf("%w: entry %d breaks the chain", ErrCorruptSnapshot, i+1)
		}
		if err := r.Ratify.Validate(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrCorruptSnapshot, i+1, err)
		}
		if r.Ratify.ProposalID != e.ProposalID || r.Ratify.Version != e.Version ||
			r.Ratify.PackageURL != e.PackageURL || r.Ratify.PackageHash != e.PackageHash ||
			r.Ratify.PackageSize != e.PackageSize {
			return nil, fmt.Errorf("%w: entry %d does not match its command", ErrCorruptSnapshot, i+1)
		}
		seen[e.ProposalID] = true
		prev = e.Hash()
	}
	return s.Records, nil
}

type fsmSnapshot struct{ records []record }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := detEnc.Marshal(snapshotData{V: commandVersion, Records: s.records})
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
