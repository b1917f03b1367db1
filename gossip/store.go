package gossip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// Datastore layout under the service's /gossip namespace:
//
//	/ops/<op id hex>    8-byte big-endian first-seen unix nanoseconds ‖ wire bytes
//	/final/<seq>        entry hash of the entry this node saw become final
//	/signed/<seq>       entry hash this validator signed at seq (signing record)
var (
	opsPrefix    = datastore.NewKey("/ops")
	finalPrefix  = datastore.NewKey("/final")
	signedPrefix = datastore.NewKey("/signed")
)

// Bounds per author (docs/governance.md "How the set stays bounded").
const (
	// maxOpenProposalsPerAuthor caps an author's proposals that no ratify
	// op names yet; a newer proposal (higher op seq) evicts the oldest.
	maxOpenProposalsPerAuthor = 8
	// maxSignaturesPerSeq is how many different entries of one validator
	// at one seq are kept: two prove equivocation, more add nothing.
	maxSignaturesPerSeq = 2
)

// ErrCorruptStore is returned by New when the datastore holds records that
// cannot be loaded; the error names them. Starting with Config.Repair
// drops them (they are fetched again from peers if still valid).
var ErrCorruptStore = errors.New("gossip: corrupt op store")

// bucketFP is the fingerprint of one of the 256 op-ID-prefix buckets.
type bucketFP struct {
	Count uint32
	XOR   [16]byte
}

// proposalState indexes one proposal and the votes naming it.
type proposalState struct {
	op        *Op
	id        string // canonical
	short     string // alias
	firstSeen time.Time
	// votes keeps each voter's vote with the highest seq; two different
	// votes at that seq (equivocation) are both kept as evidence.
	votes map[peer.ID][]*Op
}

// store is the in-memory index of the op set. It is guarded by
// Service.mu; persistence goes through ds.
type store struct {
	ds        datastore.Batching
	ops       map[OpID]*Op
	firstSeen map[OpID]time.Time
	buckets   [256]bucketFP
	bucketIDs [256]map[OpID]struct{}
	proposals map[string]*proposalState   // canonical ID -> the op with the smallest op ID
	short     map[string][]*proposalState // alias -> every proposal with it
	propByOp  map[OpID]*proposalState     // every proposal op, by op ID
	byAuthor  map[peer.ID][]*proposalState
	ratifies  map[uint64]map[peer.ID][]*Op // seq -> validator -> signatures (distinct entries)
	named     map[string]int               // proposal ID -> ratify ops naming it
	dirty     uint64                       // lowest seq a ratify op arrived for since finality was derived (0: none)
	reports   map[uint64]map[peer.ID]*Op   // seq -> reporter -> latest report
	authorSeq map[peer.ID]uint64
	lamport   uint64
	final     map[uint64]string // seq -> entry hash, persisted
	signed    map[uint64]string // seq -> entry hash this node signed, persisted
	eligible  eligibleCache
}

func newStore(ds datastore.Batching) *store {
	st := &store{
		ds:        ds,
		ops:       map[OpID]*Op{},
		firstSeen: map[OpID]time.Time{},
		proposals: map[string]*proposalState{},
		short:     map[string][]*proposalState{},
		propByOp:  map[OpID]*proposalState{},
		byAuthor:  map[peer.ID][]*proposalState{},
		ratifies:  map[uint64]map[peer.ID][]*Op{},
		reports:   map[uint64]map[peer.ID]*Op{},
		named:     map[string]int{},
		authorSeq: map[peer.ID]uint64{},
		final:     map[uint64]string{},
		signed:    map[uint64]string{},
	}
	for i := range st.bucketIDs {
		st.bucketIDs[i] = map[OpID]struct{}{}
	}
	return st
}

func (st *store) get(id OpID) (*Op, bool) {
	op, ok := st.ops[id]
	return op, ok
}

func opKey(id OpID) datastore.Key { return opsPrefix.ChildString(id.String()) }

func seqKey(prefix datastore.Key, seq uint64) datastore.Key {
	return prefix.ChildString(fmt.Sprintf("%020d", seq))
}

func encodeRecord(op *Op, firstSeen time.Time) []byte {
	b := make([]byte, 8+len(op.Raw))
	binary.BigEndian.PutUint64(b, uint64(firstSeen.UnixNano()))
	copy(b[8:], op.Raw)
	return b
}

// writeOps persists added ops and deletes dropped ones in one batch.
func (st *store) writeOps(ctx context.Context, add []*Op, seen time.Time, drop []*Op) error {
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	b, err := st.ds.Batch(ctx)
	if err != nil {
		return err
	}
	for _, op := range add {
		if err := b.Put(ctx, opKey(op.ID), encodeRecord(op, seen)); err != nil {
			return err
		}
	}
	for _, op := range drop {
		if err := b.Delete(ctx, opKey(op.ID)); err != nil {
			return err
		}
	}
	return b.Commit(ctx)
}

func (st *store) persistFinal(ctx context.Context, seq uint64, hash string) error {
	return st.ds.Put(ctx, seqKey(finalPrefix, seq), []byte(hash))
}

// persistSigned writes the signing record of seq and syncs it to disk
// before the signature leaves the node.
func (st *store) persistSigned(ctx context.Context, seq uint64, hash string) error {
	if err := st.ds.Put(ctx, seqKey(signedPrefix, seq), []byte(hash)); err != nil {
		return err
	}
	return st.ds.Sync(ctx, signedPrefix)
}

// plan decides whether op may join the set under the per-author bounds and
// which ops it replaces. It changes nothing. protected reports whether a
// proposal may not be evicted (a ratify op or a final entry names it).
func (st *store) plan(op *Op, protected func(*proposalState) bool) (evict []*Op, err error) {
	if _, ok := st.ops[op.ID]; ok {
		return nil, ErrDuplicate
	}
	switch op.Kind {
	case KindProposal:
		var open []*proposalState
		for _, ps := range st.byAuthor[op.Author] {
			if !protected(ps) {
				open = append(open, ps)
			}
		}
		if len(open) < maxOpenProposalsPerAuthor {
			return nil, nil
		}
		victim := open[0]
		for _, ps := range open[1:] {
			if ps.op.Seq < victim.op.Seq || (ps.op.Seq == victim.op.Seq && string(ps.op.ID[:]) > string(victim.op.ID[:])) {
				victim = ps
			}
		}
		if op.Seq < victim.op.Seq || (op.Seq == victim.op.Seq && string(op.ID[:]) > string(victim.op.ID[:])) {
			return nil, fmt.Errorf("%w: %s has %d open proposals", ErrSuperseded, op.Author, len(open))
		}
		evict = append(evict, victim.op)
		for _, vs := range victim.votes {
			evict = append(evict, vs...)
		}
		return evict, nil
	case KindVote:
		ps := st.propByOp[op.Deps[0]]
		if ps == nil {
			return nil, &missingDepsError{Op: op, Missing: op.Deps}
		}
		cur := ps.votes[op.Author]
		switch {
		case len(cur) == 0 || op.Seq > cur[0].Seq:
			return cur, nil
		case op.Seq == cur[0].Seq && len(cur) < 2:
			return nil, nil // equivocation: kept as evidence
		}
		return nil, fmt.Errorf("%w: %s has a newer vote on %s", ErrSuperseded, op.Author, op.Vote.ProposalID)
	case KindRatify:
		cur := st.ratifies[op.Ratify.Entry.Seq][op.Author]
		for _, o := range cur {
			if o.Ratify.EntryHash == op.Ratify.EntryHash {
				return nil, fmt.Errorf("%w: %s already signed this entry", ErrSuperseded, op.Author)
			}
		}
		if len(cur) >= maxSignaturesPerSeq {
			return nil, fmt.Errorf("%w: %s already signed %d entries at seq %d", ErrSuperseded, op.Author, len(cur), op.Ratify.Entry.Seq)
		}
		return nil, nil
	case KindReport:
		cur := st.reports[op.Report.Seq][op.Author]
		if cur == nil || op.Seq > cur.Seq {
			if cur != nil {
				evict = append(evict, cur)
			}
			return evict, nil
		}
		return nil, fmt.Errorf("%w: %s has a newer report on seq %d", ErrSuperseded, op.Author, op.Report.Seq)
	}
	return nil, fmt.Errorf("%w: %s ops are not stored", ErrInvalidOp, op.Kind)
}

// index adds an op that plan admitted to the in-memory indexes.
func (st *store) index(op *Op, seen time.Time) {
	st.ops[op.ID] = op
	st.firstSeen[op.ID] = seen
	b := &st.buckets[op.ID[0]]
	b.Count++
	for i := range b.XOR {
		b.XOR[i] ^= op.ID[i]
	}
	st.bucketIDs[op.ID[0]][op.ID] = struct{}{}
	if op.Seq > st.authorSeq[op.Author] {
		st.authorSeq[op.Author] = op.Seq
	}
	if op.Lamport > st.lamport {
		st.lamport = op.Lamport
	}
	switch op.Kind {
	case KindProposal:
		// A canonical ID carries 128 bits of the op ID; should two ops
		// still share one, every node resolves it to the smallest op ID.
		// Votes and ratify ops are bound to their proposal op by their dep,
		// never by name.
		id := proposalIDFor(op)
		ps := &proposalState{op: op, id: id, short: shortProposalID(op), firstSeen: seen, votes: map[peer.ID][]*Op{}}
		st.propByOp[op.ID] = ps
		if cur := st.proposals[id]; cur == nil || string(op.ID[:]) < string(cur.op.ID[:]) {
			st.proposals[id] = ps
		}
		st.short[ps.short] = append(st.short[ps.short], ps)
		st.byAuthor[op.Author] = append(st.byAuthor[op.Author], ps)
	case KindVote:
		ps := st.propByOp[op.Deps[0]]
		ps.votes[op.Author] = append(ps.votes[op.Author], op)
	case KindRatify:
		seq := op.Ratify.Entry.Seq
		m := st.ratifies[seq]
		if m == nil {
			m = map[peer.ID][]*Op{}
			st.ratifies[seq] = m
		}
		m[op.Author] = append(m[op.Author], op)
		if p := op.Ratify.Entry.ProposalID; p != "" {
			st.named[p]++
		}
		if st.dirty == 0 || seq < st.dirty {
			st.dirty = seq
		}
	case KindReport:
		m := st.reports[op.Report.Seq]
		if m == nil {
			m = map[peer.ID]*Op{}
			st.reports[op.Report.Seq] = m
		}
		m[op.Author] = op
	}
}

// remove drops an op from the in-memory indexes (a no-op if absent).
func (st *store) remove(op *Op) {
	if _, ok := st.ops[op.ID]; !ok {
		return
	}
	delete(st.ops, op.ID)
	delete(st.firstSeen, op.ID)
	b := &st.buckets[op.ID[0]]
	b.Count--
	for i := range b.XOR {
		b.XOR[i] ^= op.ID[i]
	}
	delete(st.bucketIDs[op.ID[0]], op.ID)
	switch op.Kind {
	case KindProposal:
		ps := st.propByOp[op.ID]
		delete(st.propByOp, op.ID)
		if ps == nil {
			return
		}
		if st.proposals[ps.id] == ps {
			delete(st.proposals, ps.id)
			for _, other := range st.propByOp { // another op with the same name (2^-128)
				if other.id == ps.id && (st.proposals[ps.id] == nil || string(other.op.ID[:]) < string(st.proposals[ps.id].op.ID[:])) {
					st.proposals[ps.id] = other
				}
			}
		}
		st.short[ps.short] = without(st.short[ps.short], ps)
		if len(st.short[ps.short]) == 0 {
			delete(st.short, ps.short)
		}
		st.byAuthor[op.Author] = without(st.byAuthor[op.Author], ps)
		if len(st.byAuthor[op.Author]) == 0 {
			delete(st.byAuthor, op.Author)
		}
	case KindVote:
		if ps := st.propByOp[op.Deps[0]]; ps != nil {
			ps.votes[op.Author] = withoutOp(ps.votes[op.Author], op)
			if len(ps.votes[op.Author]) == 0 {
				delete(ps.votes, op.Author)
			}
		}
	case KindRatify:
		seq := op.Ratify.Entry.Seq
		if m := st.ratifies[seq]; m != nil {
			m[op.Author] = withoutOp(m[op.Author], op)
			if len(m[op.Author]) == 0 {
				delete(m, op.Author)
			}
		}
		if p := op.Ratify.Entry.ProposalID; p != "" {
			if st.named[p]--; st.named[p] <= 0 {
				delete(st.named, p)
			}
		}
	case KindReport:
		if m := st.reports[op.Report.Seq]; m != nil && m[op.Author] == op {
			delete(m, op.Author)
		}
	}
}

func without(list []*proposalState, ps *proposalState) []*proposalState {
	out := list[:0:0]
	for _, x := range list {
		if x != ps {
			out = append(out, x)
		}
	}
	return out
}

func withoutOp(list []*Op, op *Op) []*Op {
	out := list[:0:0]
	for _, x := range list {
		if x.ID != op.ID {
			out = append(out, x)
		}
	}
	return out
}

// badRecord names a stored record that cannot be loaded.
type badRecord struct {
	key    string
	reason string
}

// loaded is what load read: ops in dependency order and bad records.
type loaded struct {
	ops     []*Op
	seen    map[OpID]time.Time
	bad     []badRecord
	finalAt map[uint64]time.Time
}

// read decodes every stored op, final mark and signing record. Stored ops
// were validated when they arrived; they are re-decoded (signature and
// schema) but not re-authorised, since the rules may have changed since.
// Ops come back in dependency order: proposals first, by author seq.
func (st *store) read(ctx context.Context, netID string) (*loaded, error) {
	res, err := st.ds.Query(ctx, query.Query{Prefix: opsPrefix.String()})
	if err != nil {
		return nil, err
	}
	l := &loaded{seen: map[OpID]time.Time{}, finalAt: map[uint64]time.Time{}}
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return nil, r.Error
		}
		if len(r.Value) < 8 {
			l.bad = append(l.bad, badRecord{r.Key, "shorter than its 8-byte header"})
			continue
		}
		op, err := DecodeOp(r.Value[8:], netID)
		if err != nil {
			l.bad = append(l.bad, badRecord{r.Key, err.Error()})
			continue
		}
		if datastore.NewKey(r.Key) != opKey(op.ID) {
			l.bad = append(l.bad, badRecord{r.Key, "stored under another op's key " + op.ID.String()})
			continue
		}
		if op.Kind == KindAttest {
			l.bad = append(l.bad, badRecord{r.Key, "attest ops are never stored"})
			continue
		}
		l.ops = append(l.ops, op)
		l.seen[op.ID] = time.Unix(0, int64(binary.BigEndian.Uint64(r.Value[:8])))
	}
	res.Close()
	rank := func(op *Op) int {
		if op.Kind == KindProposal {
			return 0
		}
		return 1
	}
	sort.Slice(l.ops, func(i, j int) bool {
		a, b := l.ops[i], l.ops[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		return string(a.ID[:]) < string(b.ID[:])
	})
	fres, err := st.ds.Query(ctx, query.Query{Prefix: finalAtPrefix.String()})
	if err != nil {
		return nil, err
	}
	for r := range fres.Next() {
		if r.Error != nil {
			fres.Close()
			return nil, r.Error
		}
		seq, err := strconv.ParseUint(datastore.NewKey(r.Key).BaseNamespace(), 10, 64)
		if err != nil || len(r.Value) != 8 {
			l.bad = append(l.bad, badRecord{r.Key, "not a seq → final time record"})
			continue
		}
		l.finalAt[seq] = time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))
	}
	fres.Close()
	for _, m := range []struct {
		prefix datastore.Key
		into   map[uint64]string
	}{{finalPrefix, st.final}, {signedPrefix, st.signed}} {
		res, err := st.ds.Query(ctx, query.Query{Prefix: m.prefix.String()})
		if err != nil {
			return nil, err
		}
		for r := range res.Next() {
			if r.Error != nil {
				res.Close()
				return nil, r.Error
			}
			seq, err := strconv.ParseUint(datastore.NewKey(r.Key).BaseNamespace(), 10, 64)
			if err != nil || seq == 0 || !hex64RE.Match(r.Value) {
				l.bad = append(l.bad, badRecord{r.Key, fmt.Sprintf("not a seq → entry hash record (%.40q)", r.Value)})
				continue
			}
			m.into[seq] = string(r.Value)
		}
		res.Close()
	}
	return l, nil
}

// corruptError describes bad records for ErrCorruptStore.
func corruptError(bad []badRecord) error {
	var b strings.Builder
	for i, r := range bad {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(bad)-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "/gossip%s: %s", r.key, r.reason)
	}
	return fmt.Errorf("%w: %d record(s) of the datastore cannot be loaded: %s — start the node with --repair to drop them "+
		"(valid ops are fetched again from peers), or delete the datastore directory to re-sync everything",
		ErrCorruptStore, len(bad), b.String())
}

// deleteRecords removes bad records (repair).
func (st *store) deleteRecords(ctx context.Context, bad []badRecord) error {
	for _, r := range bad {
		if err := st.ds.Delete(ctx, datastore.NewKey(r.key)); err != nil {
			return err
		}
	}
	return nil
}

// fingerprints returns a copy of the bucket fingerprints.
func (st *store) fingerprints() [256]bucketFP { return st.buckets }

// idsIn returns the sorted IDs of one bucket.
func (st *store) idsIn(b int) []OpID {
	ids := make([]OpID, 0, len(st.bucketIDs[b]))
	for id := range st.bucketIDs[b] {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// signature returns the entry hash v signed at seq, and whether v signed
// more than one entry there (equivocation).
func (st *store) signature(seq uint64, v peer.ID) (hash string, equivocated bool) {
	ops := st.ratifies[seq][v]
	switch len(ops) {
	case 0:
		return "", false
	case 1:
		return ops[0].Ratify.EntryHash, false
	}
	return "", true
}

// entryAt returns the entry with hash h that some ratify op at seq carries.
func (st *store) entryAt(seq uint64, h string) (execlog.Entry, bool) {
	vs := make([]peer.ID, 0, len(st.ratifies[seq]))
	for v := range st.ratifies[seq] {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	for _, v := range vs {
		for _, op := range st.ratifies[seq][v] {
			if op.Ratify.EntryHash == h {
				return op.Ratify.Entry, true
			}
		}
	}
	return execlog.Entry{}, false
}
