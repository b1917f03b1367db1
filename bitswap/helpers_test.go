package bitswap

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// testLogWriter routes a store's log to t.Log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

type testNode struct {
	h  *p2p.Host
	ds datastore.Batching
	s  *Store
}

// nodeOpts shape a test node.
type nodeOpts struct {
	boot    []string // bootstrap addresses
	lonely  bool     // ConnLow 1: do not dial more peers than the first found
	noDHT   bool     // Routing nil
	ds      datastore.Batching
	mutateC func(*Config)
}

// newNode starts a host on 127.0.0.1 and a store on it (in-memory
// datastore unless given), closed at the end of the test.
func newNode(t testing.TB, o nodeOpts) *testNode {
	t.Helper()
	h := p2ptest.NewHost(t, func(c *p2p.Config) {
		c.Bootstrap = o.boot
		if o.lonely {
			c.ConnLow, c.ConnHigh = 1, 8
		}
	})
	ds := o.ds
	if ds == nil {
		ds = dssync.MutexWrap(datastore.NewMapDatastore())
	}
	cfg := DefaultConfig()
	if o.mutateC != nil {
		o.mutateC(&cfg)
	}
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	deps := Deps{
		Host:      h.Dialer(), // its Connect survives a simultaneous open, as in node
		Datastore: ds,
		Logger:    slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: level})),
	}
	if !o.noDHT {
		deps.Routing = h.DHT
	}
	s, err := New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return &testNode{h: h, ds: ds, s: s}
}

func bootAddrs(h *p2p.Host) []string {
	var out []string
	for _, a := range h.P2PAddrs() {
		out = append(out, a.String())
	}
	return out
}

func connect(t testing.TB, a, b *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func connected(a, b *testNode) bool {
	return a.h.Network().Connectedness(b.h.ID()) == network.Connected
}

// randomBytes are n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readAll reads a fetch to the end.
func readAll(t testing.TB, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read fetch: %v", err)
	}
	return b
}

var errEOF = io.EOF

// blockKey is where the blockstore keeps c in the shared datastore.
func blockKey(c cid.Cid) datastore.Key {
	return datastore.NewKey("/blocks").Child(dshelp.MultihashToDsKey(c.Hash()))
}

func mustFetch(t testing.TB, s *Store, c cid.Cid, opts ...FetchOption) io.ReadCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	rc, err := s.Fetch(ctx, c, opts...)
	if err != nil {
		t.Fatalf("fetch %s: %v", c, err)
	}
	return rc
}

func queryAll(prefix string) query.Query { return query.Query{Prefix: prefix} }
