package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Sync protocol bounds (docs/protocols.md).
const (
	maxFrame          = 2 << 20  // one length-prefixed message
	maxReplyBytes     = 1 << 20  // ops bytes in one get reply
	maxIDsPerReply    = 16384    // IDs in one ids reply
	maxOpsPerReplyCap = 4096     // upper bound for Config.MaxOpsPerReply
	maxRequests       = 4096     // requests in one session
	bucketsPerIDsReq  = 64       // buckets asked per ids request
	fpSize            = 256 * 20 // fingerprint reply: 256 × (count u32 ‖ xor 16 bytes)
	maxOutbound       = 4        // concurrent outbound sessions
	maxBadOps         = 4        // not-authentic ops that end an outbound session
)

// Sync request types.
const (
	reqFingerprint = "fp"
	reqIDs         = "ids"
	reqGet         = "get"
	reqOps         = "ops" // every op of the listed buckets, by ID order
)

// syncRequest is a client message.
type syncRequest struct {
	Type    string   `cbor:"t"`
	Buckets []uint16 `cbor:"b,omitempty"`
	IDs     [][]byte `cbor:"ids,omitempty"`
	After   []byte   `cbor:"after,omitempty"` // ops: skip IDs <= After in the first bucket
}

// syncReply is a server message.
type syncReply struct {
	FP   []byte   `cbor:"fp,omitempty"`
	IDs  [][]byte `cbor:"ids,omitempty"`
	Ops  [][]byte `cbor:"ops,omitempty"`
	More bool     `cbor:"more,omitempty"`
	Done int      `cbor:"n,omitempty"` // get: requested IDs handled; ops: buckets completed
	Err  string   `cbor:"err,omitempty"`
}

var syncDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   4,
		MaxArrayElements:  maxIDsPerReply + 1,
		MaxMapPairs:       16,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// Sync session errors.
var (
	// ErrSyncProtocol wraps malformed sync messages and replies that break
	// the protocol's rules.
	ErrSyncProtocol = errors.New("gossip: sync protocol error")
	// ErrSyncMisbehaving: the peer served ops that fail decoding or their
	// signature check (corrupt or forged copies); the session ends.
	ErrSyncMisbehaving = errors.New("gossip: sync peer served ops that are not authentic")
)

func writeFrame(w *bufio.Writer, v any) (int, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return 0, err
	}
	if len(b) > maxFrame {
		return 0, fmt.Errorf("%w: frame of %d bytes", ErrSyncProtocol, len(b))
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return 0, err
	}
	if _, err := w.Write(b); err != nil {
		return 0, err
	}
	return n + len(b), w.Flush()
}

// readFrame reads one length-prefixed message and returns its payload.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes (max %d)", ErrSyncProtocol, n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeSyncRequest parses and bounds-checks a request payload.
func decodeSyncRequest(b []byte) (*syncRequest, error) {
	var req syncRequest
	if err := syncDec.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyncProtocol, err)
	}
	switch req.Type {
	case reqFingerprint:
	case reqIDs, reqOps:
		if len(req.Buckets) == 0 || len(req.Buckets) > 256 {
			return nil, fmt.Errorf("%w: ids request with %d buckets", ErrSyncProtocol, len(req.Buckets))
		}
		for _, b := range req.Buckets {
			if b > 255 {
				return nil, fmt.Errorf("%w: bucket %d", ErrSyncProtocol, b)
			}
		}
	case reqGet:
		if len(req.IDs) == 0 || len(req.IDs) > maxOpsPerReplyCap {
			return nil, fmt.Errorf("%w: get request with %d IDs", ErrSyncProtocol, len(req.IDs))
		}
	default:
		return nil, fmt.Errorf("%w: request type %q", ErrSyncProtocol, req.Type)
	}
	for _, id := range req.IDs {
		if len(id) != 32 {
			return nil, fmt.Errorf("%w: op ID of %d bytes", ErrSyncProtocol, len(id))
		}
	}
	if req.After != nil && (len(req.After) != 32 || req.Type != reqOps) {
		return nil, fmt.Errorf("%w: bad after", ErrSyncProtocol)
	}
	return &req, nil
}

// decodeSyncReply parses and bounds-checks a reply payload.
func decodeSyncReply(b []byte) (*syncReply, error) {
	var rep syncReply
	if err := syncDec.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyncProtocol, err)
	}
	if rep.FP != nil && len(rep.FP) != fpSize {
		return nil, fmt.Errorf("%w: fingerprint of %d bytes", ErrSyncProtocol, len(rep.FP))
	}
	for _, id := range rep.IDs {
		if len(id) != 32 {
			return nil, fmt.Errorf("%w: op ID of %d bytes", ErrSyncProtocol, len(id))
		}
	}
	for _, op := range rep.Ops {
		if len(op) > MaxOpSize {
			return nil, fmt.Errorf("%w: op of %d bytes", ErrSyncProtocol, len(op))
		}
	}
	if rep.Err != "" {
		return nil, fmt.Errorf("%w: peer says: %.200s", ErrSyncProtocol, rep.Err)
	}
	return &rep, nil
}

func encodeFP(fp *[256]bucketFP) []byte {
	out := make([]byte, 0, fpSize)
	for i := range fp {
		out = binary.BigEndian.AppendUint32(out, fp[i].Count)
		out = append(out, fp[i].XOR[:]...)
	}
	return out
}

// handleSync serves one inbound session: at most one per peer and
// MaxSyncSessions overall, bounded in time and requests.
func (s *Service) handleSync(str network.Stream) {
	p := str.Conn().RemotePeer()
	s.syncMu.Lock()
	if s.inbound[p] || s.nInbound >= s.cfg.MaxSyncSessions {
		s.syncMu.Unlock()
		str.Reset()
		return
	}
	s.inbound[p] = true
	s.nInbound++
	s.syncMu.Unlock()
	defer func() {
		s.syncMu.Lock()
		delete(s.inbound, p)
		s.nInbound--
		s.syncMu.Unlock()
	}()
	defer str.Close()
	_ = str.SetDeadline(time.Now().Add(s.cfg.SyncTimeout))
	r := bufio.NewReader(str)
	w := bufio.NewWriter(str)
	for i := 0; i < maxRequests; i++ {
		b, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("sync session ended", "peer", p, "err", err)
			}
			return
		}
		req, err := decodeSyncRequest(b)
		if err != nil {
			writeFrame(w, syncReply{Err: err.Error()})
			str.Reset()
			return
		}
		if _, err := writeFrame(w, s.answer(req)); err != nil {
			return
		}
	}
}

func (s *Service) answer(req *syncRequest) syncReply {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch req.Type {
	case reqFingerprint:
		fp := s.st.fingerprints()
		return syncReply{FP: encodeFP(&fp)}
	case reqIDs:
		var rep syncReply
		seen := map[uint16]bool{}
		for _, b := range req.Buckets {
			if seen[b] {
				continue
			}
			seen[b] = true
			ids := s.st.idsIn(int(b))
			if len(rep.IDs)+len(ids) > maxIDsPerReply {
				rep.More = true
				break
			}
			for _, id := range ids {
				rep.IDs = append(rep.IDs, append([]byte(nil), id[:]...))
			}
		}
		return rep
	case reqOps:
		var rep syncReply
		size := 0
		for i, b := range req.Buckets {
			for _, id := range s.st.idsIn(int(b)) {
				if i == 0 && req.After != nil && string(id[:]) <= string(req.After) {
					continue
				}
				if len(rep.Ops) == s.cfg.MaxOpsPerReply || size >= maxReplyBytes {
					rep.More = true
					return rep
				}
				op := s.st.ops[id]
				rep.Ops = append(rep.Ops, op.Raw)
				size += len(op.Raw)
			}
			rep.Done = i + 1
		}
		return rep
	default: // get
		var rep syncReply
		size := 0
		for i, raw := range req.IDs {
			if i == s.cfg.MaxOpsPerReply || size >= maxReplyBytes {
				rep.More = true
				break
			}
			rep.Done = i + 1
			var id OpID
			copy(id[:], raw)
			if op, ok := s.st.get(id); ok {
				rep.Ops = append(rep.Ops, op.Raw)
				size += len(op.Raw)
			}
		}
		return rep
	}
}

// requestSync queues a sync with p; it never blocks.
func (s *Service) requestSync(p peer.ID) {
	if p == s.self || p == "" {
		return
	}
	select {
	case s.syncQ <- p:
	default:
	}
}

// syncLoop runs queued syncs, one per peer at a time, at most maxOutbound.
func (s *Service) syncLoop() {
	defer s.wg.Done()
	sem := make(chan struct{}, maxOutbound)
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.syncQ:
			s.syncMu.Lock()
			busy := s.outbound[p]
			if !busy {
				s.outbound[p] = true
			}
			s.syncMu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-sem }()
				defer func() {
					s.syncMu.Lock()
					delete(s.outbound, p)
					s.syncMu.Unlock()
				}()
				n, err := s.syncWith(s.ctx, p)
				if err != nil {
					s.log.Debug("sync failed", "peer", p, "err", err)
				} else if n > 0 {
					s.log.Debug("synced", "peer", p, "new_ops", n)
				}
			}()
		}
	}
}

// syncClient is one outbound session.
type syncClient struct {
	r     *bufio.Reader
	w     *bufio.Writer
	bytes int
	bad   int // ops served that failed decoding or the signature check
}

// noteBad counts ops the peer served that are not authentic; past
// maxBadOps the session ends.
func (c *syncClient) noteBad(n int) error {
	c.bad += n
	if c.bad >= maxBadOps {
		return fmt.Errorf("%w: %d ops failed decoding or their signature check", ErrSyncMisbehaving, c.bad)
	}
	return nil
}

func (c *syncClient) call(req syncRequest) (*syncReply, error) {
	n, err := writeFrame(c.w, req)
	if err != nil {
		return nil, err
	}
	c.bytes += n
	b, err := readFrame(c.r)
	if err != nil {
		return nil, err
	}
	c.bytes += len(b) + 4
	return decodeSyncReply(b)
}

// SyncWith runs one sync session with p now and returns how many new ops
// it added.
func (s *Service) SyncWith(ctx context.Context, p peer.ID) (int, error) {
	return s.syncWith(ctx, p)
}

func (s *Service) syncWith(ctx context.Context, p peer.ID) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SyncTimeout)
	defer cancel()
	str, err := s.deps.Host.NewStream(ctx, p, SyncProtocol(s.netID))
	if err != nil {
		return 0, err
	}
	defer str.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	}
	c := &syncClient{r: bufio.NewReader(str), w: bufio.NewWriter(str)}
	defer func() {
		s.bytesInMu.Lock()
		s.bytesIn += int64(c.bytes)
		s.bytesInMu.Unlock()
	}()
	rep, err := c.call(syncRequest{Type: reqFingerprint})
	if err != nil {
		return 0, err
	}
	if len(rep.FP) != fpSize {
		return 0, fmt.Errorf("%w: no fingerprint in reply", ErrSyncProtocol)
	}
	s.mu.RLock()
	local := s.st.fingerprints()
	s.mu.RUnlock()
	var diff []uint16
	mine := encodeFP(&local)
	for b := 0; b < 256; b++ {
		if string(mine[b*20:b*20+20]) != string(rep.FP[b*20:b*20+20]) {
			diff = append(diff, uint16(b))
		}
	}
	var empty, partial []uint16
	for _, b := range diff {
		if local[b].Count == 0 {
			empty = append(empty, b)
		} else {
			partial = append(partial, b)
		}
	}
	added := 0
	// Buckets this node has nothing of: stream their ops directly.
	var after []byte
	for len(empty) > 0 {
		if err := ctx.Err(); err != nil {
			return added, err
		}
		rep, err := c.call(syncRequest{Type: reqOps, Buckets: empty, After: after})
		if err != nil {
			return added, err
		}
		if rep.Done > len(empty) || (!rep.More && rep.Done != len(empty)) {
			return added, fmt.Errorf("%w: ops reply completed %d of %d buckets", ErrSyncProtocol, rep.Done, len(empty))
		}
		if rep.More && rep.Done == 0 && len(rep.Ops) == 0 {
			return added, fmt.Errorf("%w: ops reply without progress", ErrSyncProtocol)
		}
		prevAfter := after
		if rep.Done > 0 {
			prevAfter = nil // a new first bucket
		}
		empty = empty[rep.Done:]
		after = nil
		if rep.More && len(rep.Ops) > 0 {
			last := opID0(rep.Ops[len(rep.Ops)-1])
			if last == (OpID{}) || (prevAfter != nil && string(last[:]) <= string(prevAfter)) {
				return added, fmt.Errorf("%w: ops reply does not advance", ErrSyncProtocol)
			}
			after = last[:]
		}
		k, missing, bad := s.ingestBatch(rep.Ops, p)
		added += k
		if err := c.noteBad(bad); err != nil {
			return added, err
		}
		if len(missing) > 0 {
			k, err := s.fetch(ctx, c, p, missing, map[OpID]bool{})
			added += k
			if err != nil {
				return added, err
			}
		}
	}
	diff = partial
	var want []OpID
	asked := map[OpID]bool{}
	for len(diff) > 0 {
		n := min(len(diff), bucketsPerIDsReq)
		rep, err := c.call(syncRequest{Type: reqIDs, Buckets: diff[:n]})
		if err != nil {
			return added, err
		}
		diff = diff[n:]
		s.mu.RLock()
		for _, raw := range rep.IDs {
			var id OpID
			copy(id[:], raw)
			if _, have := s.st.get(id); have || asked[id] {
				continue
			}
			asked[id] = true
			want = append(want, id)
		}
		s.mu.RUnlock()
	}
	k, err := s.fetch(ctx, c, p, want, asked)
	return added + k, err
}

// fetch gets the ops want from p in bounded batches, and the deps they
// turn out to need.
func (s *Service) fetch(ctx context.Context, c *syncClient, p peer.ID, want []OpID, asked map[OpID]bool) (int, error) {
	for _, id := range want {
		asked[id] = true
	}
	added := 0
	for len(want) > 0 {
		if err := ctx.Err(); err != nil {
			return added, err
		}
		n := min(len(want), s.cfg.MaxOpsPerReply)
		req := syncRequest{Type: reqGet}
		for _, id := range want[:n] {
			req.IDs = append(req.IDs, append([]byte(nil), id[:]...))
		}
		rep, err := c.call(req)
		if err != nil {
			return added, err
		}
		if rep.Done < 1 || rep.Done > n {
			return added, fmt.Errorf("%w: get reply handled %d of %d IDs", ErrSyncProtocol, rep.Done, n)
		}
		want = want[rep.Done:] // IDs the peer had no room for are asked again
		k, missing, bad := s.ingestBatch(rep.Ops, p)
		added += k
		if err := c.noteBad(bad); err != nil {
			return added, err
		}
		for _, d := range missing {
			if !asked[d] {
				asked[d] = true
				want = append([]OpID{d}, want...)
			}
		}
	}
	return added, nil
}

// opID0 computes the ID of wire bytes without validating them (zero ID if
// they do not parse), to match replies with requests.
func opID0(raw []byte) OpID {
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil {
		return OpID{}
	}
	return opID(w.Op)
}

// ingestBatch validates and adds ops fetched by sync from peer from,
// retrying ops whose deps arrive in the same batch. It returns how many
// were added, the deps still missing (the waiting ops go to the orphan
// pool) and how many ops were not authentic (they fail decoding or their
// signature check: the peer served corrupt or forged bytes).
//
// Messages in the reject cache are skipped without validation; an
// authentic op that is invalid is added to the cache, by the hash of its
// bytes. Nothing else is remembered about invalid ops, so a forged copy
// of an op never keeps the real op out.
func (s *Service) ingestBatch(raws [][]byte, from peer.ID) (int, []OpID, int) {
	ver := s.deps.Rules().Version
	added, bad := 0, 0
	pending := raws
	var waiting map[OpID]*orphan
	for len(pending) > 0 {
		var ok []*Op
		var next [][]byte
		waiting = map[OpID]*orphan{}
		for _, raw := range pending {
			h := hashMsg(raw)
			if s.rejects.has(h, ver) {
				continue
			}
			op, err := s.validate(raw)
			switch {
			case err == nil:
				ok = append(ok, op)
			case errors.Is(err, ErrMissingDeps):
				var me *MissingDepsError
				errors.As(err, &me)
				waiting[op.ID] = &orphan{raw: raw, from: from, added: time.Now(), missing: me.Missing}
				next = append(next, raw)
			case errors.Is(err, ErrDuplicate):
			case authentic(raw, s.netID, err):
				s.rejects.add(h, ver)
				s.log.Debug("rejected synced op", "from", from, "err", err)
			default:
				bad++
				s.log.Debug("peer served an op that is not authentic", "from", from, "err", err)
			}
		}
		if len(ok) == 0 {
			break
		}
		n, err := s.addOps(ok)
		if err != nil {
			s.log.Error("add synced ops", "err", err)
			return added, nil, bad
		}
		added += n
		pending = next
	}
	var missing []OpID
	seen := map[OpID]bool{}
	for id, o := range waiting {
		s.orphans.add(id, o)
		for _, d := range o.missing {
			if !seen[d] {
				seen[d] = true
				missing = append(missing, d)
			}
		}
	}
	return added, missing, bad
}
