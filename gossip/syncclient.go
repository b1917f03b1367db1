package gossip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// maxOutstanding bounds the IDs a session has asked for and not yet
	// received as valid ops (docs/protocols.md): an honest peer serves
	// what it lists, so past this the session ends.
	maxOutstanding = 1 << 16
	// syncSuspension: how long automatic syncs skip a peer whose session
	// broke the protocol or served ops that are not authentic.
	syncSuspension = 10 * time.Minute
	// maxSuspended bounds the suspension list.
	maxSuspended = 1024
	// standingTag is the connection-manager tag lowered for such peers.
	standingTag = "gossip-sync-standing"
)

// syncWith runs one sync session with p now and returns how many new ops
// it added. Errors: errSyncProtocol (the peer broke the protocol),
// errSyncMisbehaving (it served forged or corrupt ops), errSyncRefused
// (it answered with an error, e.g. no free session slot), context and
// stream errors.
func (s *Service) syncWith(ctx context.Context, p peer.ID) (int, error) {
	ss, err := s.runSync(ctx, p)
	if ss == nil {
		return 0, err
	}
	return ss.added, err
}

// session is the client side of one outbound sync session. It is used by
// one goroutine.
type session struct {
	s   *Service
	ctx context.Context
	p   peer.ID
	r   *bufio.Reader
	w   *bufio.Writer

	bytes    int            // bytes sent and received
	requests map[string]int // requests sent, by type
	getIDs   int            // IDs asked with get requests

	// The get queue. Every ID is asked at most once per session (asked):
	// a peer that served a forged copy of an op is not asked for it again.
	asked map[OpID]struct{}
	carry []OpID // asked in the last get but beyond what its reply covered
	deps  []OpID // deps found missing while ingesting: asked first
	want  []OpID // IDs the peer listed that this node lacks

	// Ops of this session waiting for deps, indexed by missing dep, so
	// they are retried as soon as a dep arrives (at most OrphanMax; the
	// oldest go to the orphan pool beyond that, the rest when the session
	// ends).
	waiting  map[OpID][]*waiter
	waiters  []*waiter // arrival order; may hold done ones
	nWaiting int

	added int // new ops
	bad   int // ops served that are not authentic
}

// waiter is an op of a session waiting for deps.
type waiter struct {
	op      *Op
	raw     []byte
	missing []OpID
	done    bool // retried, or handed to the orphan pool
}

func newSession(ctx context.Context, s *Service, p peer.ID, r *bufio.Reader, w *bufio.Writer) *session {
	return &session{s: s, ctx: ctx, p: p, r: r, w: w, requests: map[string]int{},
		asked: map[OpID]struct{}{}, waiting: map[OpID][]*waiter{}}
}

// runSync runs one session with p and returns it (nil when no stream
// could be opened) with the error that ended it.
func (s *Service) runSync(ctx context.Context, p peer.ID) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SyncTimeout)
	defer cancel()
	str, err := s.deps.Host.NewStream(ctx, p, SyncProtocol(s.netID))
	if err != nil {
		return nil, err
	}
	defer str.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	}
	ss := newSession(ctx, s, p, bufio.NewReader(str), bufio.NewWriter(str))
	err = ss.run()
	ss.finish()
	if err != nil {
		str.Reset()
		if errors.Is(err, errSyncProtocol) || errors.Is(err, errSyncMisbehaving) {
			s.penalise(p, err)
		}
	}
	s.syncer.bytesIn.Add(int64(ss.bytes))
	return ss, err
}

// penalise lowers the standing of p after a session that broke the
// protocol or served ops that are not authentic: automatic syncs (on
// connect, periodic, for missing deps) skip it for syncSuspension, and its
// connection-manager tag drops so its connection is among the first
// pruned. Explicit syncWith calls still run. The times are local, never
// replicated.
func (s *Service) penalise(p peer.ID, err error) {
	s.syncer.suspend(p, s.now())
	s.deps.Host.ConnManager().UpsertTag(p, standingTag, func(v int) int { return max(v-10, -100) })
	s.log.Info("sync peer misbehaved; automatic syncs with it suspended", "peer", p, "for", syncSuspension, "err", err)
}

// call sends one request and reads its reply.
func (ss *session) call(req syncRequest) (*syncReply, error) {
	if err := ss.ctx.Err(); err != nil {
		return nil, err
	}
	total := 0
	for _, n := range ss.requests {
		total += n
	}
	if total >= maxRequests {
		return nil, fmt.Errorf("gossip: sync session reached %d requests", maxRequests)
	}
	ss.requests[req.Type]++
	n, err := writeFrame(ss.w, req)
	if err != nil {
		return nil, err
	}
	ss.bytes += n
	b, err := readFrame(ss.r)
	if err != nil {
		return nil, err
	}
	ss.bytes += len(b) + 4
	return decodeSyncReply(b)
}

// run: fingerprints, then whole buckets this node lacks (ops), then the
// other differing buckets (ids, get).
func (ss *session) run() error {
	rep, err := ss.call(syncRequest{Type: reqFingerprint})
	if err != nil {
		return err
	}
	if len(rep.FP) != fpSize || rep.IDs != nil || rep.Ops != nil || rep.More || rep.Done != 0 {
		return fmt.Errorf("%w: fp reply must hold exactly a fingerprint", errSyncProtocol)
	}
	ss.s.mu.RLock()
	local := ss.s.st.fingerprints()
	ss.s.mu.RUnlock()
	mine := encodeFP(&local)
	var empty, partial []uint16
	for b := 0; b < 256; b++ {
		if bytes.Equal(mine[b*20:b*20+20], rep.FP[b*20:b*20+20]) {
			continue
		}
		if local[b].Count == 0 {
			empty = append(empty, uint16(b))
		} else {
			partial = append(partial, uint16(b))
		}
	}
	if err := ss.walk(reqOps, empty); err != nil {
		return err
	}
	return ss.walk(reqIDs, partial)
}

// walk asks for the ops (typ reqOps) or IDs (reqIDs) of buckets, resuming
// cut replies until every bucket is covered, and fetches what each reply
// shows to be missing before asking for more (memory stays bounded by
// one reply).
func (ss *session) walk(typ string, buckets []uint16) error {
	var after []byte
	for len(buckets) > 0 {
		req := syncRequest{Type: typ, Buckets: buckets, After: after}
		rep, err := ss.call(req)
		if err != nil {
			return err
		}
		ids, err := checkRangeReply(&req, rep)
		if err != nil {
			return err
		}
		if typ == reqOps {
			if err := ss.ingest(rep.Ops); err != nil {
				return err
			}
		} else {
			ss.queueWanted(ids)
		}
		if err := ss.fetch(); err != nil {
			return err
		}
		buckets, after = buckets[rep.Done:], nil
		if len(buckets) > 0 && len(ids) > 0 {
			if last := ids[len(ids)-1]; uint16(last[0]) == buckets[0] {
				after = last[:]
			}
		}
	}
	return nil
}

// checkRangeReply checks an ids or ops reply against its request
// (docs/protocols.md) and returns the IDs of its items, computed from the
// bytes for ops. Items must be in ascending ID order, after req.After, in
// the buckets the reply covers (n of them, plus b[n] when more is set),
// and a cut reply must make progress.
func checkRangeReply(req *syncRequest, rep *syncReply) ([]OpID, error) {
	nb := len(req.Buckets)
	if rep.FP != nil || (req.Type == reqIDs && rep.Ops != nil) || (req.Type == reqOps && rep.IDs != nil) {
		return nil, fmt.Errorf("%w: %s reply with fields of another reply", errSyncProtocol, req.Type)
	}
	if rep.Done > nb || rep.More != (rep.Done < nb) {
		return nil, fmt.Errorf("%w: %s reply covers %d of %d buckets with more=%v", errSyncProtocol, req.Type, rep.Done, nb, rep.More)
	}
	var ids []OpID
	if req.Type == reqIDs {
		if len(rep.IDs) > maxIDsPerReply {
			return nil, fmt.Errorf("%w: %d IDs in one reply", errSyncProtocol, len(rep.IDs))
		}
		ids = make([]OpID, len(rep.IDs))
		for i, raw := range rep.IDs {
			copy(ids[i][:], raw)
		}
	} else {
		ids = make([]OpID, len(rep.Ops))
		for i, raw := range rep.Ops {
			if ids[i] = opID0(raw); ids[i] == (OpID{}) {
				return nil, fmt.Errorf("%w: op %d of an ops reply does not parse", errSyncProtocol, i)
			}
		}
	}
	covered := req.Buckets[:rep.Done]
	if rep.More {
		covered = req.Buckets[:rep.Done+1]
	}
	prev, k := req.After, 0
	for _, id := range ids {
		if prev != nil && bytes.Compare(id[:], prev) <= 0 {
			return nil, fmt.Errorf("%w: %s reply does not advance (ID %s not after the previous one)", errSyncProtocol, req.Type, id.String()[:12])
		}
		for k < len(covered) && uint16(id[0]) > covered[k] {
			k++
		}
		if k == len(covered) || uint16(id[0]) != covered[k] {
			return nil, fmt.Errorf("%w: %s reply holds ID %s outside the buckets it covers", errSyncProtocol, req.Type, id.String()[:12])
		}
		prev = id[:]
	}
	if rep.More && rep.Done == 0 && len(ids) == 0 {
		return nil, fmt.Errorf("%w: %s reply without progress", errSyncProtocol, req.Type)
	}
	return ids, nil
}

// checkGetReply checks a get reply against the IDs asked: n covers 1..all
// of them, more is set exactly when it covers fewer, and every op is one
// of the covered IDs, at most once.
func checkGetReply(asked []OpID, rep *syncReply) error {
	if rep.FP != nil || rep.IDs != nil {
		return fmt.Errorf("%w: get reply with fields of another reply", errSyncProtocol)
	}
	if rep.Done < 1 || rep.Done > len(asked) || rep.More != (rep.Done < len(asked)) {
		return fmt.Errorf("%w: get reply covers %d of %d IDs with more=%v", errSyncProtocol, rep.Done, len(asked), rep.More)
	}
	if len(rep.Ops) > rep.Done {
		return fmt.Errorf("%w: get reply with %d ops for %d IDs", errSyncProtocol, len(rep.Ops), rep.Done)
	}
	open := make(map[OpID]bool, rep.Done)
	for _, id := range asked[:rep.Done] {
		open[id] = true
	}
	for i, raw := range rep.Ops {
		id := opID0(raw)
		if !open[id] {
			return fmt.Errorf("%w: op %d of a get reply was not asked for (or is repeated, or does not parse)", errSyncProtocol, i)
		}
		delete(open, id)
	}
	return nil
}

// queueWanted queues the listed IDs this node lacks and has not asked for.
func (ss *session) queueWanted(ids []OpID) {
	ss.s.mu.RLock()
	defer ss.s.mu.RUnlock()
	for _, id := range ids {
		if _, have := ss.s.st.get(id); have || ss.s.dropped[id] {
			continue
		}
		if _, ok := ss.asked[id]; !ok {
			ss.want = append(ss.want, id)
		}
	}
}

// nextBatch takes the next get request's IDs: what the last reply did not
// cover, then missing deps, then wanted IDs, skipping IDs already asked or
// held. Each ID enters the queues a bounded number of times, so the work
// is linear in the IDs queued.
func (ss *session) nextBatch() []OpID {
	max := ss.s.cfg.MaxOpsPerReply
	out := make([]OpID, 0, max)
	out = append(out, ss.carry...)
	ss.carry = nil
	ss.s.mu.RLock()
	defer ss.s.mu.RUnlock()
	take := func(q *[]OpID) {
		for len(out) < max && len(*q) > 0 {
			id := (*q)[0]
			*q = (*q)[1:]
			if _, ok := ss.asked[id]; ok {
				continue
			}
			if _, have := ss.s.st.get(id); have || ss.s.dropped[id] {
				continue
			}
			ss.asked[id] = struct{}{}
			out = append(out, id)
		}
		if len(*q) == 0 {
			*q = nil
		}
	}
	take(&ss.deps)
	take(&ss.want)
	return out
}

// fetch asks for queued IDs in batches until the queues are empty.
func (ss *session) fetch() error {
	for {
		batch := ss.nextBatch()
		if len(batch) == 0 {
			return nil
		}
		req := syncRequest{Type: reqGet, IDs: make([][]byte, len(batch))}
		for i := range batch {
			req.IDs[i] = batch[i][:]
		}
		ss.getIDs += len(batch)
		rep, err := ss.call(req)
		if err != nil {
			return err
		}
		if err := checkGetReply(batch, rep); err != nil {
			return err
		}
		ss.carry = batch[rep.Done:]
		if err := ss.ingest(rep.Ops); err != nil {
			return err
		}
	}
}

// ingest validates and adds ops the peer served, retrying the session's
// waiting ops whose deps arrive, queues the deps still missing, and ends
// the session when the peer served too many ops that are not authentic or
// withholds too many it listed.
func (ss *session) ingest(raws [][]byte) error {
	for queue := raws; len(queue) > 0; {
		ok := ss.validateAll(queue)
		if len(ok) == 0 {
			break
		}
		n, err := ss.s.addOps(ok)
		if err != nil {
			return fmt.Errorf("gossip: add synced ops: %w", err)
		}
		ss.added += n
		queue = ss.release(ok)
	}
	ss.spill(ss.s.cfg.OrphanMax)
	if ss.bad >= maxBadOps {
		return fmt.Errorf("%w: %d ops failed decoding or their signature check", errSyncMisbehaving, ss.bad)
	}
	if len(ss.asked) >= maxOutstanding {
		// Forget the IDs that arrived; what is left was asked for and
		// not received as a valid op. Sweeps are at least maxOutstanding/2
		// insertions apart, so they cost O(1) per ID.
		ss.s.mu.RLock()
		for id := range ss.asked {
			if _, have := ss.s.st.get(id); have {
				delete(ss.asked, id)
			}
		}
		ss.s.mu.RUnlock()
		if len(ss.asked) >= maxOutstanding/2 {
			return fmt.Errorf("%w: %d ops asked for and not received", errSyncProtocol, len(ss.asked))
		}
	}
	return nil
}

// validateAll validates each op once and returns the valid ones. Ops
// with missing deps wait in the session (their deps are queued);
// messages in the reject cache are skipped without validation; an
// authentic op that is invalid is cached by the hash of its bytes; an op
// that is not authentic counts against the peer. Nothing is remembered by
// op ID, so a forged copy of an op never keeps the real op out.
func (ss *session) validateAll(raws [][]byte) []*Op {
	s := ss.s
	ver := s.deps.Rules().Version
	var ok []*Op
	for _, raw := range raws {
		h := hashMsg(raw)
		if s.rejects.has(h, ver) {
			continue
		}
		op, err := s.validate(raw)
		switch {
		case err == nil && op.Kind == KindAttest:
			// Attest ops are transient and never served by sync.
		case err == nil:
			ok = append(ok, op)
		case errors.Is(err, ErrPendingRules):
			s.orphans.add(op.ID, &orphan{raw: raw, from: ss.p, added: s.now(), missing: []OpID{rulesDep}})
		case errors.Is(err, ErrSuperseded):
			// Valid, but the set keeps something newer: remembered by
			// content (op ID), so sync does not fetch it again.
			s.mu.Lock()
			s.noteDroppedLocked(op.ID)
			s.mu.Unlock()
		case errors.Is(err, ErrMissingDeps):
			var me *missingDepsError
			errors.As(err, &me)
			w := &waiter{op: op, raw: raw, missing: me.Missing}
			ss.asked[op.ID] = struct{}{} // received: not asked for again
			ss.waiters = append(ss.waiters, w)
			ss.nWaiting++
			for _, d := range me.Missing {
				if len(ss.waiting[d]) == 0 {
					ss.deps = append(ss.deps, d)
				}
				ss.waiting[d] = append(ss.waiting[d], w)
			}
		case errors.Is(err, ErrDuplicate):
		case authentic(raw, s.netID, err):
			s.rejects.add(h, ver)
			s.log.Debug("rejected synced op", "from", ss.p, "err", err)
		default:
			ss.bad++
			s.log.Debug("peer served an op that is not authentic", "from", ss.p, "err", err)
		}
	}
	return ok
}

// release returns the waiting ops that wait for one of ops, to be tried
// again. Each waiter is released once: the work is linear in the ops.
func (ss *session) release(ops []*Op) [][]byte {
	var out [][]byte
	for _, op := range ops {
		for _, w := range ss.waiting[op.ID] {
			if !w.done {
				w.done = true
				ss.nWaiting--
				out = append(out, w.raw)
			}
		}
		delete(ss.waiting, op.ID)
	}
	return out
}

// spill hands the oldest waiting ops beyond max to the orphan pool and
// drops released waiters from the arrival list once it has grown.
func (ss *session) spill(max int) {
	var out []*waiter
	for ss.nWaiting > max && len(ss.waiters) > 0 {
		w := ss.waiters[0]
		ss.waiters = ss.waiters[1:]
		if !w.done {
			w.done = true
			ss.nWaiting--
			out = append(out, w)
		}
	}
	if len(ss.waiters) > 2*ss.nWaiting+64 {
		kept := make([]*waiter, 0, ss.nWaiting)
		for _, w := range ss.waiters {
			if !w.done {
				kept = append(kept, w)
			}
		}
		ss.waiters = kept
	}
	ss.s.adoptOrphans(ss.p, out)
}

// finish hands every op still waiting to the orphan pool.
func (ss *session) finish() {
	var out []*waiter
	for _, w := range ss.waiters {
		if !w.done {
			w.done = true
			out = append(out, w)
		}
	}
	ss.waiters, ss.waiting, ss.nWaiting = nil, map[OpID][]*waiter{}, 0
	ss.s.adoptOrphans(ss.p, out)
}

// adoptOrphans puts waiting ops into the orphan pool. A dep added by
// someone else since they were validated would never release them, so
// deps already held release their orphans at once.
func (s *Service) adoptOrphans(from peer.ID, ws []*waiter) {
	if len(ws) == 0 {
		return
	}
	seen := map[OpID]bool{}
	var deps []OpID
	for _, w := range ws {
		s.orphans.add(w.op.ID, &orphan{raw: w.raw, from: from, added: s.now(), missing: w.missing})
		for _, d := range w.missing {
			if !seen[d] {
				seen[d] = true
				deps = append(deps, d)
			}
		}
	}
	for _, d := range deps {
		s.mu.RLock()
		_, have := s.st.get(d)
		s.mu.RUnlock()
		if have {
			for _, o := range s.orphans.waitingFor(d) {
				s.ingest(o.raw, o.from)
			}
		}
	}
}

// opID0 computes the ID of wire bytes without validating them (zero ID if
// they do not parse), to match replies with requests.
func opID0(raw []byte) OpID {
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil || len(w.Op) == 0 {
		return OpID{}
	}
	return opID(w.Op)
}
