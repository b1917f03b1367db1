package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// tamper rewrites the k-th reply (0-based, per request type) to a request
// of the faulty peer: it returns the reply to send, or raw bytes to write
// as they are (framing included).
type tamper func(k int, req *syncRequest, rep syncReply) (syncReply, []byte)

// faultyPeer starts a sync peer that answers from f, with tamper applied
// to every reply.
func faultyPeer(t *testing.T, f *fakeSet, tm tamper) host.Host {
	counts := map[string]int{}
	h := rogueSync(t, newKey(t), func(req *syncRequest, w *bufio.Writer) bool {
		if req == nil {
			return false
		}
		rep, raw := tm(counts[req.Type], req, f.answer(req, maxIDsPerReply, 256))
		counts[req.Type]++
		if raw != nil {
			w.Write(raw)
			return w.Flush() == nil
		}
		_, err := writeFrame(w, rep)
		return err == nil
	})
	return h
}

func frame(payload []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(payload))), payload...)
}

// on applies fn to the k-th reply of type typ only.
func on(typ string, k int, fn func(req *syncRequest, rep syncReply) (syncReply, []byte)) tamper {
	return func(i int, req *syncRequest, rep syncReply) (syncReply, []byte) {
		if req.Type == typ && i == k {
			return fn(req, rep)
		}
		return rep, nil
	}
}

// TestSyncFaultyReplies: a peer that sends bad frames, oversize frames,
// replies with wrong bucket numbers, replies that do not advance or that
// disagree with their request ends the session with a clear error
// (errSyncProtocol, errSyncMisbehaving or errSyncRefused), loses standing
// when it broke the rules, and the node keeps working: one session with an
// honest peer afterwards delivers every op the faulty ones touched.
func TestSyncFaultyReplies(t *testing.T) {
	author, honestKey, victimKey := newKey(t), newKey(t), newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{author, honestKey, victimKey}, 1, openVoting()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	cfg.SyncTimeout = 5 * time.Second

	// held and twin share bucket X (the victim holds held); loose are
	// ops in other buckets, one per bucket, ascending by ID.
	props := proposalsFrom(t, author, 80)
	var held, twin *Op
	for i := 0; i < len(props) && held == nil; i++ {
		for j := i + 1; j < len(props); j++ {
			if props[i].ID[0] == props[j].ID[0] {
				held, twin = props[i], props[j]
				break
			}
		}
	}
	if held == nil {
		t.Fatal("no two proposals share a bucket")
	}
	var loose, extra []*Op
	used := map[byte]bool{held.ID[0]: true}
	for _, p := range props {
		switch {
		case p == held || p == twin:
		case !used[p.ID[0]] && len(loose) < 6:
			used[p.ID[0]] = true
			loose = append(loose, p)
		case len(extra) < maxBadOps:
			extra = append(extra, p) // only ever served forged
		}
	}
	sort.Slice(loose, func(i, j int) bool { return string(loose[i].ID[:]) < string(loose[j].ID[:]) })

	honest := startNode(t, honestKey, memDS(), rb, cfg)
	victim := startNode(t, victimKey, memDS(), rb, cfg)
	noAutoSync(victim)
	all := append([]*Op{held, twin}, loose...)
	for _, op := range all {
		if err := honest.svc.Ingest(op.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := victim.svc.Ingest(held.Raw); err != nil {
		t.Fatal(err)
	}
	raws := func(ops ...*Op) [][]byte {
		var out [][]byte
		for _, op := range ops {
			out = append(out, op.Raw)
		}
		return out
	}
	// real: the set an honest peer would serve; the ops path streams
	// loose (buckets the victim lacks), the ids path bucket X.
	real := newFakeSet(raws(all...))
	idOf := func(op *Op) []byte { return append([]byte(nil), op.ID[:]...) }

	cases := []struct {
		name      string
		set       *fakeSet
		tm        tamper
		want      error // nil: a timeout
		penalised bool
	}{
		{"garbage frame", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, frame([]byte("hello, not CBOR"))
		}), errSyncProtocol, true},
		{"oversize frame", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, binary.AppendUvarint(nil, maxFrame+1)
		}), errSyncProtocol, true},
		{"frame length overflows", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
		}), errSyncProtocol, true},
		{"unknown field", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			b, _ := encMode.Marshal(map[string]any{"fp": make([]byte, fpSize), "x": 1})
			return syncReply{}, frame(b)
		}), errSyncProtocol, true},
		{"fingerprint of the wrong size", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{FP: make([]byte, 100)}, nil
		}), errSyncProtocol, true},
		{"no fingerprint", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, nil
		}), errSyncProtocol, true},
		{"ops reply covers more buckets than asked", real, on(reqOps, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Done = len(req.Buckets) + 1
			return rep, nil
		}), errSyncProtocol, true},
		{"ops reply ends early without more", real, on(reqOps, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			return syncReply{Ops: rep.Ops[:1], Done: 0}, nil
		}), errSyncProtocol, true},
		{"ops reply with more but no progress", real, on(reqOps, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{More: true}, nil
		}), errSyncProtocol, true},
		{"ops reply does not advance", real, func(k int, req *syncRequest, rep syncReply) (syncReply, []byte) {
			if req.Type == reqOps { // the first op again and again, ignoring after
				return syncReply{Ops: [][]byte{loose[0].Raw}, More: true}, nil
			}
			return rep, nil
		}, errSyncProtocol, true},
		{"ops reply out of order", real, on(reqOps, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{Ops: [][]byte{loose[1].Raw, loose[0].Raw}, More: true}, nil
		}), errSyncProtocol, true},
		{"ops reply from a bucket not asked", real, on(reqOps, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Ops = append([][]byte{held.Raw}, rep.Ops...) // bucket X is not streamed
			return rep, nil
		}), errSyncProtocol, true},
		{"ops reply with junk", real, on(reqOps, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Ops = [][]byte{[]byte("junk")}
			return rep, nil
		}), errSyncProtocol, true},
		{"ids reply from a bucket not asked", real, on(reqIDs, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			return syncReply{IDs: [][]byte{idOf(loose[0])}, Done: 1}, nil
		}), errSyncProtocol, true},
		{"ids reply not ascending", real, on(reqIDs, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			sort.Slice(rep.IDs, func(i, j int) bool { return string(rep.IDs[i]) > string(rep.IDs[j]) })
			return rep, nil
		}), errSyncProtocol, true},
		{"ids reply with more but no progress", real, on(reqIDs, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{More: true}, nil
		}), errSyncProtocol, true},
		{"ids reply carrying ops", real, on(reqIDs, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Ops = [][]byte{twin.Raw}
			return rep, nil
		}), errSyncProtocol, true},
		{"get reply with an op not asked for", real, on(reqGet, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Ops = [][]byte{held.Raw}
			return rep, nil
		}), errSyncProtocol, true},
		{"get reply with a repeated op", real, on(reqGet, 0, func(req *syncRequest, rep syncReply) (syncReply, []byte) {
			rep.Ops = append(rep.Ops, rep.Ops...)
			return rep, nil
		}), errSyncProtocol, true},
		{"get reply covering nothing", real, on(reqGet, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, nil
		}), errSyncProtocol, true},
		{"forged ops", newFakeSet([][]byte{held.Raw, forge(t, extra[0].Raw), forge(t, extra[1].Raw), forge(t, extra[2].Raw),
			forge(t, extra[3].Raw)}), func(_ int, _ *syncRequest, rep syncReply) (syncReply, []byte) {
			return rep, nil
		}, errSyncMisbehaving, true},
		{"busy", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{Err: "busy: no free sync session slot"}, nil
		}), errSyncRefused, false},
		{"silence", real, on(reqFingerprint, 0, func(*syncRequest, syncReply) (syncReply, []byte) {
			return syncReply{}, []byte{} // writes nothing
		}), nil, false},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fh := faultyPeer(t, c.set, c.tm)
			p := fh.ID()
			if err := victim.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: fh.Addrs()}); err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n, err := victim.svc.syncWith(sctx, p)
			t.Logf("%d new ops, err: %v", n, err)
			switch {
			case c.want == nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err):
				t.Fatalf("want a timeout, got %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("want %v, got %v", c.want, err)
			}
			victim.svc.syncer.mu.Lock()
			_, suspended := victim.svc.syncer.suspended[p]
			victim.svc.syncer.mu.Unlock()
			if suspended != c.penalised {
				t.Fatalf("peer suspended: %v, want %v", suspended, c.penalised)
			}
			if c.penalised {
				if v := victim.h.ConnManager().GetTagInfo(p); v != nil && v.Tags[standingTag] >= 0 {
					t.Fatalf("standing tag %d", v.Tags[standingTag])
				}
			}
		})
	}

	// The node keeps working: one honest session delivers everything.
	connect(t, victim, honest)
	if _, err := victim.svc.syncWith(ctx, honest.id); err != nil {
		t.Fatal(err)
	}
	sameSets(t, honest, victim)
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// TestSyncSuspendedPeerSkipped: after a peer broke the protocol,
// automatic syncs with it do not run; another peer's still do.
func TestSyncSuspendedPeerSkipped(t *testing.T) {
	rb := &rulesBox{}
	rb.set(makeRules(nil, 0, genesis.DefaultGovernance()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	n := startNode(t, newKey(t), memDS(), rb, cfg)
	noAutoSync(n)
	sessions := make(chan string, 16)
	serve := func(name string, bad bool) peer.ID {
		h := rogueSync(t, newKey(t), func(req *syncRequest, w *bufio.Writer) bool {
			if req != nil && req.Type == reqFingerprint {
				sessions <- name
				if bad {
					w.Write(frame([]byte("junk")))
					return w.Flush() == nil
				}
			}
			_, err := writeFrame(w, newFakeSet(nil).answer(req, maxIDsPerReply, 256))
			return err == nil
		})
		if err := n.h.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		return h.ID()
	}
	bad, good := serve("bad", true), serve("good", false)
	if _, err := n.svc.syncWith(context.Background(), bad); !errors.Is(err, errSyncProtocol) {
		t.Fatalf("session with the bad peer: %v", err)
	}
	if got := <-sessions; got != "bad" {
		t.Fatal(got)
	}
	// The queue is served in order: once the good peer's session has
	// started, the bad peer's request has been handled (skipped).
	n.svc.requestSync(bad)
	n.svc.requestSync(good)
	select {
	case got := <-sessions:
		if got != "good" {
			t.Fatalf("automatic sync ran with the suspended peer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no automatic sync with the good peer")
	}
	// An explicit sync still runs.
	n.svc.syncWith(context.Background(), bad)
	if got := <-sessions; got != "bad" {
		t.Fatal(got)
	}
}

// TestSyncServerRejectsBadRequests: requests that break the protocol's
// rules get an err reply naming the problem; the node goes on serving.
func TestSyncServerRejectsBadRequests(t *testing.T) {
	rb := &rulesBox{}
	key := newKey(t)
	rb.set(makeRules([]crypto.PrivKey{key}, 1, genesis.DefaultGovernance()))
	n := startNode(t, key, memDS(), rb, testConfig())
	if _, err := n.svc.PublishProposal(context.Background(), testBody(1)); err != nil {
		t.Fatal(err)
	}
	idle := func() bool {
		n.svc.syncer.mu.Lock()
		defer n.svc.syncer.mu.Unlock()
		return len(n.svc.syncer.inbound) == 0
	}
	id := make([]byte, 32)
	id[0] = 7
	cases := map[string]any{
		"unknown type":            syncRequest{Type: "all"},
		"fp with buckets":         syncRequest{Type: reqFingerprint, Buckets: []uint16{1}},
		"ids without buckets":     syncRequest{Type: reqIDs},
		"bucket 256":              syncRequest{Type: reqIDs, Buckets: []uint16{3, 256}},
		"buckets descending":      syncRequest{Type: reqOps, Buckets: []uint16{5, 4}},
		"bucket repeated":         syncRequest{Type: reqIDs, Buckets: []uint16{4, 4}},
		"after in another bucket": syncRequest{Type: reqOps, Buckets: []uint16{8}, After: id},
		"after of 31 bytes":       syncRequest{Type: reqIDs, Buckets: []uint16{7}, After: id[:31]},
		"get without IDs":         syncRequest{Type: reqGet},
		"get with a short ID":     syncRequest{Type: reqGet, IDs: [][]byte{id[:5]}},
		"get with 4097 IDs":       syncRequest{Type: reqGet, IDs: make([][]byte, maxOpsPerReplyCap+1)},
		"get with buckets":        syncRequest{Type: reqGet, IDs: [][]byte{id}, Buckets: []uint16{1}},
		"unknown field":           map[string]any{"t": "fp", "zz": 1},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			testutil.WaitFor(t, 5*time.Second, "no session left", idle)
			c, err := openSession(context.Background(), bareHost(t, newKey(t), n), n.id)
			if err != nil {
				t.Fatal(err)
			}
			defer c.str.Close()
			if _, err := writeFrame(c.w, req); err != nil {
				t.Fatal(err)
			}
			b, err := readFrame(c.r)
			if err != nil {
				t.Fatalf("no err reply: %v", err)
			}
			_, err = decodeSyncReply(b)
			if !errors.Is(err, errSyncRefused) || !strings.Contains(err.Error(), "sync protocol error") {
				t.Fatalf("want an err reply naming the protocol error, got %v", err)
			}
			t.Logf("%v", err)
		})
	}
	// An oversize frame ends the session; the next one is served.
	h := bareHost(t, newKey(t), n)
	testutil.WaitFor(t, 5*time.Second, "no session left", idle)
	c, err := openSession(context.Background(), h, n.id)
	if err != nil {
		t.Fatal(err)
	}
	c.w.Write(binary.AppendUvarint(nil, maxFrame+1))
	c.w.Flush()
	if _, err := readFrame(c.r); err == nil {
		t.Fatal("oversize frame answered")
	}
	c.str.Close()
	testutil.WaitFor(t, 5*time.Second, "a good session after the bad ones", func() bool {
		c, err := openSession(context.Background(), h, n.id)
		if err != nil {
			return false
		}
		defer c.str.Close()
		return c.served()
	})
}
