package gossip

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Hand-written sync peers for adversarial tests: a bare libp2p host (no
// gossip service, so it never syncs on its own) whose sync handler is
// written by the test.

// rogueSync starts a bare host for key on 127.0.0.1 whose sync handler
// calls serve for every request frame it reads (decoded when it decodes;
// req is nil and payload holds the bytes otherwise). serve writes what it
// likes to w and returns false to end the session. It returns the host.
func rogueSync(t testing.TB, key crypto.PrivKey, serve func(req *syncRequest, w *bufio.Writer) bool) host.Host {
	t.Helper()
	h, _ := newHost(t, key)
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(SyncProtocol(testNet), func(str network.Stream) {
		defer str.Close()
		_ = str.SetDeadline(time.Now().Add(30 * time.Second))
		r, w := bufio.NewReader(str), bufio.NewWriter(str)
		for {
			b, err := readFrame(r)
			if err != nil {
				return
			}
			req, err := decodeSyncRequest(b)
			if err != nil {
				req = nil
			}
			if !serve(req, w) {
				str.Reset()
				return
			}
		}
	})
	return h
}

// fakeSet answers sync requests from a fixed list of wire ops, filed
// under the ID of their unsigned part: a forged copy of an op (same
// unsigned bytes, another signature) is filed under the real op's ID.
type fakeSet struct {
	ids []OpID // ascending
	raw map[OpID][]byte
}

func newFakeSet(raws [][]byte) *fakeSet {
	f := &fakeSet{raw: map[OpID][]byte{}}
	for _, r := range raws {
		id := opID0(r)
		if _, ok := f.raw[id]; !ok {
			f.ids = append(f.ids, id)
		}
		f.raw[id] = r
	}
	sort.Slice(f.ids, func(i, j int) bool { return string(f.ids[i][:]) < string(f.ids[j][:]) })
	return f
}

// answer follows the sync protocol as docs/protocols.md states it.
func (f *fakeSet) answer(req *syncRequest, idsCap, opsCap int) syncReply {
	switch req.Type {
	case reqFingerprint:
		var fp [256]bucketFP
		for _, id := range f.ids {
			fp[id[0]].Count++
			for i := range fp[id[0]].XOR {
				fp[id[0]].XOR[i] ^= id[i]
			}
		}
		return syncReply{FP: encodeFP(&fp)}
	case reqGet:
		var rep syncReply
		for i, raw := range req.IDs {
			if i == opsCap {
				rep.More = true
				break
			}
			rep.Done = i + 1
			var id OpID
			copy(id[:], raw)
			if r, ok := f.raw[id]; ok {
				rep.Ops = append(rep.Ops, r)
			}
		}
		return rep
	}
	var rep syncReply
	limit := idsCap
	if req.Type == reqOps {
		limit = opsCap
	}
	for i, b := range req.Buckets {
		for _, id := range f.ids {
			if int(id[0]) != int(b) || (i == 0 && req.After != nil && string(id[:]) <= string(req.After)) {
				continue
			}
			if len(rep.IDs)+len(rep.Ops) == limit {
				rep.More = true
				return rep
			}
			if req.Type == reqOps {
				rep.Ops = append(rep.Ops, f.raw[id])
			} else {
				rep.IDs = append(rep.IDs, append([]byte(nil), id[:]...))
			}
		}
		rep.Done = i + 1
	}
	return rep
}

// serveFake is a rogueSync handler answering from f.
func serveFake(f *fakeSet) func(*syncRequest, *bufio.Writer) bool {
	return func(req *syncRequest, w *bufio.Writer) bool {
		if req == nil {
			return false
		}
		_, err := writeFrame(w, f.answer(req, maxIDsPerReply, 256))
		return err == nil
	}
}

// forge returns a copy of an op with a garbage signature: same unsigned
// bytes, so the same op ID, still canonical CBOR.
func forge(t testing.TB, raw []byte) []byte {
	t.Helper()
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	sig := sha256.Sum256(raw)
	w.Sig = append(sig[:], sig[:]...)
	out, err := encMode.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeOp(out, testNet); !errors.Is(err, errBadSignature) {
		t.Fatalf("forged copy: %v", err)
	}
	return out
}

// sessionConn opens a sync stream from h to p by hand.
type sessionConn struct {
	str network.Stream
	r   *bufio.Reader
	w   *bufio.Writer
}

func openSession(ctx context.Context, h host.Host, p peer.ID) (*sessionConn, error) {
	str, err := h.NewStream(ctx, p, SyncProtocol(testNet))
	if err != nil {
		return nil, err
	}
	_ = str.SetDeadline(time.Now().Add(30 * time.Second))
	return &sessionConn{str: str, r: bufio.NewReader(str), w: bufio.NewWriter(str)}, nil
}

// call sends one request and returns the decoded reply.
func (c *sessionConn) call(req syncRequest) (*syncReply, error) {
	if _, err := writeFrame(c.w, req); err != nil {
		return nil, err
	}
	b, err := readFrame(c.r)
	if err != nil {
		return nil, err
	}
	return decodeSyncReply(b)
}

// fingerprint asks for the fingerprint and returns the error, if any.
func (c *sessionConn) fingerprint() error {
	rep, err := c.call(syncRequest{Type: reqFingerprint})
	if err == nil && len(rep.FP) != fpSize {
		err = errors.New("no fingerprint in the reply")
	}
	return err
}

// served reports whether a session is being served: it asks for the
// fingerprint and waits for the reply.
func (c *sessionConn) served() bool { return c.fingerprint() == nil }

// dead reports whether the server has ended the session (reset or
// closed): a read returns an error other than a timeout.
func (c *sessionConn) dead() bool {
	_ = c.str.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	defer c.str.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.r.ReadByte()
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// signParallel runs n signing jobs on every core and returns their
// results in order.
func signParallel(t testing.TB, n int, sign func(i int) ([]byte, error)) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i], errs[i] = sign(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// noAutoSync stops n from syncing on its own when a connection opens, so
// a test decides every outbound session n runs (syncWith).
func noAutoSync(n *tnode) {
	n.h.Network().StopNotify(n.svc.notifiee)
}
