package gossip

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/internal/cborx"
)

// Sync protocol bounds (docs/protocols.md).
const (
	maxFrame          = 2 << 20  // one length-prefixed message
	maxReplyBytes     = 1 << 20  // ops bytes in one reply (cut before an op that starts past it)
	maxIDsPerReply    = 16384    // IDs in one ids reply
	maxOpsPerReplyCap = 4096     // upper bound for Config.MaxOpsPerReply and IDs in a get request
	maxRequests       = 4096     // requests in one session
	fpSize            = 256 * 20 // fingerprint reply: 256 × (count u32 ‖ xor 16 bytes)
	maxOutbound       = 4        // concurrent outbound sessions
	maxBadOps         = 4        // not-authentic ops that end an outbound session
)

// Sync request types.
const (
	reqFingerprint = "fp"
	reqIDs         = "ids" // IDs of the listed buckets, ascending
	reqGet         = "get"
	reqOps         = "ops" // every op of the listed buckets, by ascending ID
)

// syncRequest is a client message.
type syncRequest struct {
	Type    string   `cbor:"t"`
	Buckets []uint16 `cbor:"b,omitempty"`     // ids, ops: strictly ascending
	IDs     [][]byte `cbor:"ids,omitempty"`   // get
	After   []byte   `cbor:"after,omitempty"` // ids, ops: resume after this ID (in bucket b[0])
}

// syncReply is a server message.
type syncReply struct {
	FP   []byte   `cbor:"fp,omitempty"`
	IDs  [][]byte `cbor:"ids,omitempty"`
	Ops  [][]byte `cbor:"ops,omitempty"`
	More bool     `cbor:"more,omitempty"`
	Done int      `cbor:"n,omitempty"` // get: requested IDs handled; ids, ops: leading buckets completed
	Err  string   `cbor:"err,omitempty"`
}

var syncDec = cborx.Strict(cborx.Limits{MaxArrayElements: maxIDsPerReply, MaxMapPairs: 16, MaxNestedLevels: 4})

// Sync session errors.
var (
	// errSyncProtocol wraps malformed sync messages and replies that break
	// the protocol's rules (docs/protocols.md).
	errSyncProtocol = errors.New("gossip: sync protocol error")
	// errSyncRefused: the peer answered with an error message, e.g. it
	// has no free session slot.
	errSyncRefused = errors.New("gossip: sync refused by peer")
	// errSyncMisbehaving: the peer served ops that fail decoding or their
	// signature check (corrupt or forged copies); the session ends.
	errSyncMisbehaving = errors.New("gossip: sync peer served ops that are not authentic")
)

func writeFrame(w *bufio.Writer, v any) (int, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return 0, err
	}
	if len(b) > maxFrame {
		return 0, fmt.Errorf("%w: frame of %d bytes", errSyncProtocol, len(b))
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
// Errors of the stream are returned as they are; a bad or oversize
// length is an errSyncProtocol.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes (max %d)", errSyncProtocol, n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readUvarint is binary.ReadUvarint that tells stream errors (returned
// as they are) from an overlong length (errSyncProtocol).
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: frame length overflows 64 bits", errSyncProtocol)
}

// decodeSyncRequest parses and checks a request payload against the
// protocol's rules.
func decodeSyncRequest(b []byte) (*syncRequest, error) {
	var req syncRequest
	if err := syncDec.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("%w: %v", errSyncProtocol, err)
	}
	switch req.Type {
	case reqFingerprint:
		if req.Buckets != nil || req.IDs != nil || req.After != nil {
			return nil, fmt.Errorf("%w: fp request with arguments", errSyncProtocol)
		}
	case reqIDs, reqOps:
		if req.IDs != nil {
			return nil, fmt.Errorf("%w: %s request with ids", errSyncProtocol, req.Type)
		}
		if len(req.Buckets) == 0 || len(req.Buckets) > 256 {
			return nil, fmt.Errorf("%w: %s request with %d buckets", errSyncProtocol, req.Type, len(req.Buckets))
		}
		for i, b := range req.Buckets {
			if b > 255 {
				return nil, fmt.Errorf("%w: bucket %d", errSyncProtocol, b)
			}
			if i > 0 && b <= req.Buckets[i-1] {
				return nil, fmt.Errorf("%w: buckets not strictly ascending", errSyncProtocol)
			}
		}
		if req.After != nil && (len(req.After) != 32 || uint16(req.After[0]) != req.Buckets[0]) {
			return nil, fmt.Errorf("%w: after must be a 32-byte ID in the first bucket", errSyncProtocol)
		}
	case reqGet:
		if req.Buckets != nil || req.After != nil {
			return nil, fmt.Errorf("%w: get request with buckets", errSyncProtocol)
		}
		if len(req.IDs) == 0 || len(req.IDs) > maxOpsPerReplyCap {
			return nil, fmt.Errorf("%w: get request with %d IDs", errSyncProtocol, len(req.IDs))
		}
		for _, id := range req.IDs {
			if len(id) != 32 {
				return nil, fmt.Errorf("%w: op ID of %d bytes", errSyncProtocol, len(id))
			}
		}
	default:
		return nil, fmt.Errorf("%w: request type %q", errSyncProtocol, req.Type)
	}
	return &req, nil
}

// decodeSyncReply parses and bounds-checks a reply payload. Whether the
// reply answers its request is checked by the client (syncclient.go).
func decodeSyncReply(b []byte) (*syncReply, error) {
	var rep syncReply
	if err := syncDec.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%w: %v", errSyncProtocol, err)
	}
	if rep.Err != "" {
		return nil, fmt.Errorf("%w: peer says: %.200q", errSyncRefused, rep.Err)
	}
	if rep.FP != nil && len(rep.FP) != fpSize {
		return nil, fmt.Errorf("%w: fingerprint of %d bytes", errSyncProtocol, len(rep.FP))
	}
	if len(rep.Ops) > maxOpsPerReplyCap {
		return nil, fmt.Errorf("%w: %d ops in one reply", errSyncProtocol, len(rep.Ops))
	}
	if rep.Done < 0 {
		return nil, fmt.Errorf("%w: n = %d", errSyncProtocol, rep.Done)
	}
	for _, id := range rep.IDs {
		if len(id) != 32 {
			return nil, fmt.Errorf("%w: op ID of %d bytes", errSyncProtocol, len(id))
		}
	}
	for _, op := range rep.Ops {
		if len(op) > maxOpSize {
			return nil, fmt.Errorf("%w: op of %d bytes", errSyncProtocol, len(op))
		}
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

// isMember: a validator or a key of the reputation map under the current
// rules.
func (s *Service) isMember(p peer.ID) bool {
	rules := s.deps.Rules()
	if rules.IsValidator(p) {
		return true
	}
	_, ok := rules.Reputation[p]
	return ok
}

// refuse answers the first request of a session that got no slot with an
// err reply ("busy"), then closes the stream. Reading the request first
// keeps the reply from racing the client's write; anything but a short
// request is reset.
func refuse(str network.Stream) {
	_ = str.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReaderSize(str, 64)
	n, err := readUvarint(r)
	if err != nil || n > 64 {
		str.Reset()
		return
	}
	if _, err := r.Discard(int(n)); err != nil {
		str.Reset()
		return
	}
	writeFrame(bufio.NewWriter(str), syncReply{Err: "busy: no free sync session slot"})
	str.Close()
}

// handleSync serves one inbound session admitted by syncer.admit, bounded
// in time and requests.
func (s *Service) handleSync(str network.Stream) {
	p := str.Conn().RemotePeer()
	in, evicted := s.syncer.admit(p, str, s.isMember(p), s.cfg.MaxSyncSessions, s.cfg.MaxNonMemberSyncSessions)
	if evicted != nil {
		s.log.Debug("sync session evicted for a member's", "member", p)
		evicted.str.Reset()
	}
	if in == nil {
		refuse(str)
		return
	}
	defer s.syncer.endInbound(p, in)
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
			// Close, not reset: a reset can overtake the reply and
			// discard it at the client.
			s.log.Debug("bad sync request", "peer", p, "err", err)
			writeFrame(w, syncReply{Err: err.Error()})
			return
		}
		if _, err := writeFrame(w, s.answer(req)); err != nil {
			return
		}
	}
}

// answer serves one request from the op set.
func (s *Service) answer(req *syncRequest) syncReply {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch req.Type {
	case reqFingerprint:
		fp := s.st.fingerprints()
		return syncReply{FP: encodeFP(&fp)}
	case reqIDs, reqOps:
		return s.answerRangeLocked(req)
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

// bucketCache keeps each bucket's IDs sorted for the sync server, keyed
// by the bucket's fingerprint: the set only grows, so a bucket whose count
// and XOR are unchanged holds the same IDs. A request then costs the items
// it returns, not a sort of every bucket it touches (a client may send
// 4096 requests per session).
type bucketCache struct {
	mu  sync.Mutex
	fp  [256]bucketFP
	ids [256][]OpID
}

// sorted returns bucket b's IDs in ascending order, given its current
// fingerprint fp; the caller holds Service.mu (read) and must not modify
// the slice.
func (c *bucketCache) sorted(st *store, b int, fp bucketFP) []OpID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fp != c.fp[b] {
		c.ids[b], c.fp[b] = st.idsIn(b), fp
	}
	return c.ids[b]
}

// answerRangeLocked serves ids and ops requests: the IDs (ops) of the
// requested buckets that are greater than After, in ascending ID order,
// cut at the reply's bounds. n counts the leading buckets fully covered;
// more is set exactly when n < len(b).
func (s *Service) answerRangeLocked(req *syncRequest) syncReply {
	var rep syncReply
	size := 0
	full := func() bool {
		if req.Type == reqIDs {
			return len(rep.IDs) == s.syncer.idsCap
		}
		return len(rep.Ops) == s.cfg.MaxOpsPerReply || size >= maxReplyBytes
	}
	fps := s.st.fingerprints()
	for i, b := range req.Buckets {
		ids := s.syncer.sortedIDs.sorted(s.st, int(b), fps[b])
		if i == 0 && req.After != nil {
			ids = ids[sort.Search(len(ids), func(j int) bool { return string(ids[j][:]) > string(req.After) }):]
		}
		for _, id := range ids {
			if full() {
				rep.More = true
				return rep
			}
			if req.Type == reqIDs {
				rep.IDs = append(rep.IDs, append([]byte(nil), id[:]...))
			} else {
				op, _ := s.st.get(id)
				rep.Ops = append(rep.Ops, op.Raw)
				size += len(op.Raw)
			}
		}
		rep.Done = i + 1
	}
	return rep
}

// requestSync queues a sync with p; it never blocks.
func (s *Service) requestSync(p peer.ID) {
	if p == s.self || p == "" {
		return
	}
	select {
	case s.syncer.queue <- p:
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
		case p := <-s.syncer.queue:
			if !s.syncer.startOutbound(p, s.now()) {
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
				defer s.syncer.endOutbound(p)
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
