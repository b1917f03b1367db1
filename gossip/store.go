package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Datastore layout under the service's /gossip namespace:
//
//	/ops/<op id hex>    8-byte big-endian first-seen unix nanoseconds ‖ wire bytes
//	/final/<seq>        entry hash of the entry this node saw become final
var (
	opsPrefix   = datastore.NewKey("/ops")
	finalPrefix = datastore.NewKey("/final")
)

// bucketFP is the fingerprint of one of the 256 op-ID-prefix buckets.
type bucketFP struct {
	Count uint32
	XOR   [16]byte
}

// proposalState indexes one proposal and the votes naming it.
type proposalState struct {
	op        *Op
	id        string
	firstSeen time.Time
	votes     map[peer.ID][]*Op
}

// store is the in-memory index of the op set. It is guarded by
// Service.mu; persistence goes through ds.
type store struct {
	ds        datastore.Batching
	ops       map[OpID]*Op
	firstSeen map[OpID]time.Time
	buckets   [256]bucketFP
	bucketIDs [256][]OpID
	proposals map[string]*proposalState             // by proposal ID: the op with the smallest op ID
	propByOp  map[OpID]*proposalState               // every proposal op, by op ID
	ratifies  map[uint64]map[string]map[peer.ID]*Op // seq -> entry hash -> validator
	reports   map[uint64][]*Op
	authorSeq map[peer.ID]uint64
	lamport   uint64
	final     map[uint64]string // seq -> entry hash, monotone, persisted
}

func newStore(ds datastore.Batching) *store {
	return &store{
		ds:        ds,
		ops:       map[OpID]*Op{},
		firstSeen: map[OpID]time.Time{},
		proposals: map[string]*proposalState{},
		propByOp:  map[OpID]*proposalState{},
		ratifies:  map[uint64]map[string]map[peer.ID]*Op{},
		reports:   map[uint64][]*Op{},
		authorSeq: map[peer.ID]uint64{},
		final:     map[uint64]string{},
	}
}

func (st *store) get(id OpID) (*Op, bool) {
	op, ok := st.ops[id]
	return op, ok
}

func opKey(id OpID) datastore.Key { return opsPrefix.ChildString(id.String()) }

func encodeRecord(op *Op, firstSeen time.Time) []byte {
	b := make([]byte, 8+len(op.Raw))
	binary.BigEndian.PutUint64(b, uint64(firstSeen.UnixNano()))
	copy(b[8:], op.Raw)
	return b
}

// persist writes ops in one batch.
func (st *store) persist(ctx context.Context, ops []*Op, seen time.Time) error {
	b, err := st.ds.Batch(ctx)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if err := b.Put(ctx, opKey(op.ID), encodeRecord(op, seen)); err != nil {
			return err
		}
	}
	return b.Commit(ctx)
}

func (st *store) persistFinal(ctx context.Context, seq uint64, hash string) error {
	return st.ds.Put(ctx, finalPrefix.ChildString(fmt.Sprintf("%020d", seq)), []byte(hash))
}

// index adds a validated op to the in-memory indexes. It reports false when
// the op was already there.
func (st *store) index(op *Op, seen time.Time) bool {
	if _, ok := st.ops[op.ID]; ok {
		return false
	}
	st.ops[op.ID] = op
	st.firstSeen[op.ID] = seen
	b := &st.buckets[op.ID[0]]
	b.Count++
	for i := range b.XOR {
		b.XOR[i] ^= op.ID[i]
	}
	st.bucketIDs[op.ID[0]] = append(st.bucketIDs[op.ID[0]], op.ID)
	if op.Seq > st.authorSeq[op.Author] {
		st.authorSeq[op.Author] = op.Seq
	}
	if op.Lamport > st.lamport {
		st.lamport = op.Lamport
	}
	switch op.Kind {
	case KindProposal:
		// Proposal IDs carry only 32 bits of the op ID, so two proposals
		// can share one (by chance or by grinding). Every node resolves
		// the name to the op with the smallest op ID; votes and ratify
		// ops are bound to their proposal op by their dep, never by name.
		id := ProposalIDFor(op)
		ps := &proposalState{op: op, id: id, firstSeen: seen, votes: map[peer.ID][]*Op{}}
		st.propByOp[op.ID] = ps
		if cur := st.proposals[id]; cur == nil || string(op.ID[:]) < string(cur.op.ID[:]) {
			st.proposals[id] = ps
		}
	case KindVote:
		// Validate guarantees the proposal op is present.
		ps := st.propByOp[op.Deps[0]]
		ps.votes[op.Author] = append(ps.votes[op.Author], op)
	case KindRatify:
		e := op.Ratify
		m := st.ratifies[e.Entry.Seq]
		if m == nil {
			m = map[string]map[peer.ID]*Op{}
			st.ratifies[e.Entry.Seq] = m
		}
		if m[e.EntryHash] == nil {
			m[e.EntryHash] = map[peer.ID]*Op{}
		}
		// One validator may sign the same entry twice (different seq);
		// either op is the same signature for counting.
		if _, ok := m[e.EntryHash][op.Author]; !ok {
			m[e.EntryHash][op.Author] = op
		}
	case KindReport:
		st.reports[op.Report.Seq] = append(st.reports[op.Report.Seq], op)
	}
	return true
}

// load reads every stored op and final mark. Stored ops were validated when
// they arrived; they are re-decoded (signature and schema) but not
// re-authorised, since the rules may have changed since. Ops are indexed in
// dependency order (proposals first).
func (st *store) load(ctx context.Context, netID string) (int, error) {
	res, err := st.ds.Query(ctx, query.Query{Prefix: opsPrefix.String()})
	if err != nil {
		return 0, err
	}
	type rec struct {
		op   *Op
		seen time.Time
	}
	var recs []rec
	bad := 0
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return 0, r.Error
		}
		if len(r.Value) < 8 {
			bad++
			continue
		}
		op, err := DecodeOp(r.Value[8:], netID)
		if err != nil || datastore.NewKey(r.Key) != opKey(op.ID) {
			bad++ // keep the record; it is reported, never deleted
			continue
		}
		recs = append(recs, rec{op, time.Unix(0, int64(binary.BigEndian.Uint64(r.Value[:8])))})
	}
	res.Close()
	sort.Slice(recs, func(i, j int) bool {
		ki, kj := recs[i].op.Kind == KindProposal, recs[j].op.Kind == KindProposal
		if ki != kj {
			return ki
		}
		return string(recs[i].op.ID[:]) < string(recs[j].op.ID[:])
	})
	for _, r := range recs {
		if (r.op.Kind == KindVote || r.op.Kind == KindRatify) && len(r.op.Deps) == 1 {
			if _, ok := st.ops[r.op.Deps[0]]; !ok {
				bad++
				continue
			}
		}
		st.index(r.op, r.seen)
	}
	fres, err := st.ds.Query(ctx, query.Query{Prefix: finalPrefix.String()})
	if err != nil {
		return bad, err
	}
	defer fres.Close()
	for r := range fres.Next() {
		if r.Error != nil {
			return bad, r.Error
		}
		seq, err := strconv.ParseUint(datastore.NewKey(r.Key).BaseNamespace(), 10, 64)
		if err != nil {
			bad++
			continue
		}
		st.final[seq] = string(r.Value)
	}
	return bad, nil
}

// fingerprints returns a copy of the bucket fingerprints.
func (st *store) fingerprints() [256]bucketFP { return st.buckets }

// idsIn returns the sorted IDs of one bucket.
func (st *store) idsIn(b int) []OpID {
	ids := append([]OpID(nil), st.bucketIDs[b]...)
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}
