package bitswap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	bsbitswap "github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// The fetcher knows only a hub; the holder knows only the same hub. The
// fetcher finds the holder through the DHT, dials it and fetches.
func TestFetchTwoHopsThroughDHT(t *testing.T) {
	hub := newNode(t, nodeOpts{})
	holder := newNode(t, nodeOpts{boot: bootAddrs(hub.h), lonely: true})
	fetcher := newNode(t, nodeOpts{boot: bootAddrs(hub.h), lonely: true})
	for _, n := range []*testNode{holder, fetcher} {
		testutil.WaitFor(t, 10*time.Second, "DHT routing table", func() bool { return n.h.DHT.RoutingTable().Size() > 0 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(3, 3<<20)
	res, err := holder.s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.s.Provide(ctx, res.CID); err != nil {
		t.Fatal(err)
	}
	// Providing walked the DHT and may have dialled the fetcher: hang up.
	// Add also queued an announcement that walks the DHT in the background
	// and may dial the fetcher again, now or while it fetches (then both
	// dial each other at once: the fetcher's Connect must survive that).
	testutil.WaitFor(t, 10*time.Second, "fetcher and holder hung up", func() bool {
		holder.h.Network().ClosePeer(fetcher.h.ID())
		fetcher.h.Network().ClosePeer(holder.h.ID())
		time.Sleep(50 * time.Millisecond)
		return !connected(fetcher, holder)
	})
	var last, total int64
	start := time.Now()
	rc, err := fetcher.s.Fetch(ctx, res.CID, WithProgress(func(done, tot int64) {
		if done < last {
			t.Errorf("progress went back: %d after %d", done, last)
		}
		last, total = done, tot
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, rc)
	t.Logf("fetched %d bytes across the DHT in %s", len(got), time.Since(start))
	if !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Fatalf("progress ended at %d/%d", last, total)
	}
	if !connected(fetcher, holder) {
		t.Fatal("fetcher did not connect to the provider it found")
	}
	// The fetcher now keeps the package and announces it.
	if ok, err := fetcher.s.Has(ctx, res.CID); !ok || err != nil {
		t.Fatalf("fetcher Has = %v, %v", ok, err)
	}
	if ok, _ := fetcher.s.pins.has(ctx, res.CID); !ok {
		t.Fatal("fetched package not kept")
	}
	testutil.WaitFor(t, 10*time.Second, "fetcher announced as provider", func() bool {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		defer fcancel()
		for ai := range hub.h.DHT.FindProvidersAsync(fctx, res.CID, 0) {
			if ai.ID == fetcher.h.ID() {
				return true
			}
		}
		return false
	})
}

// Two peers hold the package; the first goes away in the middle of the
// fetch and the fetch completes from the second.
func TestFetchSurvivesHolderLeaving(t *testing.T) {
	a := newNode(t, nodeOpts{noDHT: true})
	b := newNode(t, nodeOpts{noDHT: true})
	f := newNode(t, nodeOpts{noDHT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(4, 6<<20)
	ra, err := a.s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.Add(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	connect(t, f, a)
	connect(t, f, b)
	rc, err := f.s.Fetch(ctx, ra.CID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 256<<10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	// a leaves: its store and its host stop.
	a.s.Close(context.Background())
	a.h.Close(ctx)
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read after holder left: %v", err)
	}
	if !bytes.Equal(append(head, rest...), data) {
		t.Fatal("fetched bytes differ")
	}
}

// Cancelling the context stops a fetch in progress: the next read fails
// with the context's error and Close returns promptly.
func TestFetchCancel(t *testing.T) {
	holder := newNode(t, nodeOpts{noDHT: true})
	f := newNode(t, nodeOpts{noDHT: true})
	data := randomBytes(5, 16<<20)
	res, err := holder.s.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	connect(t, f, holder)
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := f.s.Fetch(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	var rerr error
	for rerr == nil {
		_, rerr = rc.Read(buf)
	}
	if !errors.Is(rerr, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", rerr)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	// A cancelled fetch is not kept (nor announced).
	if ok, _ := f.s.pins.has(context.Background(), res.CID); ok {
		t.Fatal("partially fetched package was kept")
	}
}

// Nobody has the CID: Fetch ends with ErrUnavailable at the context's
// deadline, not later.
func TestFetchUnknownCIDTimesOut(t *testing.T) {
	hub := newNode(t, nodeOpts{})
	f := newNode(t, nodeOpts{boot: bootAddrs(hub.h)})
	testutil.WaitFor(t, 10*time.Second, "DHT routing table", func() bool { return f.h.DHT.RoutingTable().Size() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	rc, err := f.s.Fetch(ctx, randomCID(t))
	if err == nil {
		rc.Close()
		t.Fatal("fetch of an unknown CID succeeded")
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timed out after %s, deadline was 1s", d)
	}
}

// A peer that serves a block whose bytes do not match its CID: bitswap
// recomputes the CID of every received block, so the bad block answers no
// want, is never stored, and the fetch completes from an honest peer.
func TestCorruptBlockRejected(t *testing.T) {
	honest := newNode(t, nodeOpts{noDHT: true})
	f := newNode(t, nodeOpts{noDHT: true})
	ctx := context.Background()
	data := randomBytes(6, 1<<20)
	res, err := honest.s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	root, err := honest.s.local.Get(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	bad := root.Links()[2].Cid

	// The evil peer: plain boxo bitswap over a blockstore that does not
	// check hashes, holding every block, one of them with flipped bytes.
	evilHost := p2ptest.NewHost(t, nil)
	evilDS := dssync.MutexWrap(datastore.NewMapDatastore())
	q, err := honest.ds.Query(ctx, queryAll("/blocks"))
	if err != nil {
		t.Fatal(err)
	}
	for e := range q.Next() {
		if err := evilDS.Put(ctx, datastore.NewKey(e.Key), e.Value); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	good, err := honest.ds.Get(ctx, blockKey(bad))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	if err := evilDS.Put(ctx, blockKey(bad), corrupt); err != nil {
		t.Fatal(err)
	}
	evilNet := bsnet.NewFromIpfsHost(evilHost.Host)
	evil := bsbitswap.New(ctx, evilNet, nil, blockstore.NewBlockstore(evilDS))
	t.Cleanup(func() { evil.Close() })

	// Only the evil peer: the fetch cannot complete and stores nothing bad.
	if err := f.h.Connect(ctx, evilHost.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	rc, err := f.s.Fetch(tctx, res.CID)
	if err != nil {
		t.Fatal(err) // the root is served correctly
	}
	// It ends at the deadline, or earlier when boxo's session gives up on
	// the only provider (disconnected for the corrupt block): either way
	// an error, never the package.
	if _, err := io.ReadAll(rc); err == nil {
		t.Fatal("read from the evil peer only succeeded")
	}
	rc.Close()
	cancel()
	if ok, _ := f.ds.Has(ctx, blockKey(bad)); ok {
		t.Fatal("corrupt block was stored")
	}
	if ok, _ := f.s.Has(ctx, res.CID); ok {
		t.Fatal("Has reports an incomplete package")
	}

	// With the evil peer connected again and an honest peer as well, the
	// fetch completes with the right bytes.
	if err := f.h.Connect(ctx, evilHost.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	connect(t, f, honest)
	got := readAll(t, mustFetch(t, f.s, res.CID))
	if !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	stored, err := f.ds.Get(ctx, blockKey(bad))
	if err != nil || !bytes.Equal(stored, good) {
		t.Fatalf("stored block differs from the honest one (err %v)", err)
	}
}

// A block corrupted on the local disk is never reassembled or served: it
// is dropped, and fetched again from a peer that has it.
func TestLocalCorruptionHealsFromPeer(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(7, 600<<10)
	before := newNode(t, nodeOpts{noDHT: true})
	res, err := before.s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// The block goes bad on disk while the node is down; a store checks
	// each block once per process, so corruption shows after a restart.
	before.s.Close(context.Background())
	n := newNode(t, nodeOpts{noDHT: true, ds: before.ds})
	root, err := n.s.local.Get(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	leaf := root.Links()[1].Cid
	good, _ := n.ds.Get(ctx, blockKey(leaf))
	bad := bytes.Clone(good)
	bad[10] ^= 1
	if err := n.ds.Put(ctx, blockKey(leaf), bad); err != nil {
		t.Fatal(err)
	}
	// Alone, the node cannot read the package: the corrupt block is
	// dropped and nobody else has it.
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rc, err := n.s.Fetch(tctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read err = %v, want DeadlineExceeded", err)
	}
	rc.Close()
	if ok, _ := n.ds.Has(ctx, blockKey(leaf)); ok {
		t.Fatal("corrupt block still stored")
	}
	// A peer with the package heals it.
	peer := newNode(t, nodeOpts{noDHT: true})
	if _, err := peer.s.Add(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	connect(t, n, peer)
	if got := readAll(t, mustFetch(t, n.s, res.CID)); !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	if stored, _ := n.ds.Get(ctx, blockKey(leaf)); !bytes.Equal(stored, good) {
		t.Fatal("block not healed")
	}
}

// When the watchdog cancels a stalled attempt, the reader starts a new
// session at the byte where it stopped: nothing is lost or repeated.
func TestFetchRestartsAfterStall(t *testing.T) {
	holder := newNode(t, nodeOpts{noDHT: true})
	f := newNode(t, nodeOpts{noDHT: true})
	data := randomBytes(9, 2<<20+12345)
	res, err := holder.s.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	connect(t, f, holder)
	rc := mustFetch(t, f.s, res.CID)
	defer rc.Close()
	r := rc.(*fetchReader)
	head := make([]byte, 300<<10+7) // ends inside the second chunk
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	// What the watchdog does after stallTimeout without progress.
	f.s.resetQueues()
	r.mu.Lock()
	r.stalled = true
	r.attempt()
	r.mu.Unlock()
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if !bytes.Equal(append(head, rest...), data) {
		t.Fatal("bytes differ after restart")
	}
}

// A root that declares fewer bytes than its leaves hold cannot push a
// fetch past its size cap, nor pass for a complete package.
func TestLyingRootIsCapped(t *testing.T) {
	holder := newNode(t, nodeOpts{noDHT: true})
	f := newNode(t, nodeOpts{noDHT: true})
	ctx := context.Background()
	real, err := holder.s.Add(ctx, bytes.NewReader(randomBytes(13, 3<<18))) // three 256 KiB leaves
	if err != nil {
		t.Fatal(err)
	}
	realRoot, err := holder.s.local.Get(ctx, real.CID)
	if err != nil {
		t.Fatal(err)
	}
	fsn := unixfs.NewFSNode(unixfs.TFile)
	lying := merkledag.NodeWithData(nil)
	for _, l := range realRoot.Links() {
		leaf, err := holder.s.local.Get(ctx, l.Cid)
		if err != nil {
			t.Fatal(err)
		}
		if err := lying.AddNodeLink("", leaf); err != nil {
			t.Fatal(err)
		}
		fsn.AddBlockSize(100) // the truth is 256 KiB
	}
	b, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	lying.SetData(b)
	if err := holder.s.dag.Add(ctx, lying); err != nil {
		t.Fatal(err)
	}
	connect(t, f, holder)
	for _, maxSize := range []int64{1000, 1 << 20} {
		rc := mustFetch(t, f.s, lying.Cid(), WithMaxSize(maxSize))
		_, err := io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrSizeMismatch) {
			t.Fatalf("cap %d: err = %v, want ErrTooLarge or ErrSizeMismatch", maxSize, err)
		}
		if ok, _ := f.s.pins.has(ctx, lying.Cid()); ok {
			t.Fatal("lying package was kept")
		}
	}
}
