package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	badger "github.com/ipfs/go-ds-badger"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// startNode starts the node of cfg; it closes at the end of the test.
func startNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nd, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Close is idempotent: a test may close (or stop) the node earlier.
	t.Cleanup(func() { nd.Close(context.Background()) })
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return nd
}

// runTinyUpgrade proposes a tiny module (which fails as bad_module on
// every node) on a single-node network, votes and waits until the node
// executed it as seq 1.
func runTinyUpgrade(t *testing.T, nd *node.Node) {
	t.Helper()
	ctx := context.Background()
	gov, _, pkgs := nd.APIBackends()
	info, err := pkgs.AddPackage(ctx, bytes.NewReader([]byte("\x00asm\x01\x00\x00\x00")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gov.Propose(ctx, httpapi.ProposeRequest{Title: "tiny", Version: "1.2.0",
		PackageURL: info.URL, PackageHash: info.SHA256, PackageSize: info.Size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gov.Vote(ctx, p.ProposalID, "approval"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for nd.Upgrades().LastExecutedSeq() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("entry 1 not executed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withDatastore opens a stopped node's datastore.
func withDatastore(t *testing.T, cfg node.Config, f func(ds datastore.Batching)) {
	t.Helper()
	opts := badger.DefaultOptions
	ds, err := badger.NewDatastore(filepath.Join(cfg.DataDir, node.DatastoreDir), &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	f(ds)
}

func putOp(t *testing.T, ds datastore.Batching, raw []byte, netID string) {
	t.Helper()
	op, err := gossip.DecodeOp(raw, netID)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 8+len(raw))
	binary.BigEndian.PutUint64(rec, uint64(time.Now().UnixNano()))
	copy(rec[8:], raw)
	if err := ds.Put(context.Background(), datastore.NewKey("/gossip/ops/"+op.ID.String()), rec); err != nil {
		t.Fatal(err)
	}
}

// TestExecutorHaltsOnConflictingLog: the node executed entry X at seq 1;
// then its view of the log says entry Y is final there (here: its final
// mark was rewritten on disk and a signature for Y planted — in a real
// network it takes more than f byzantine validators). It does not run on
// from a state the network does not share: the executor halts, status
// says so, the metric is set, and nothing executes after it.
func TestExecutorHaltsOnConflictingLog(t *testing.T) {
	cfg := initDir(t)
	nd := startNode(t, cfg)
	runTinyUpgrade(t, nd)
	netID := nd.NetID()
	nd.Close(context.Background())

	key, err := p2p.LoadIdentity(filepath.Join(cfg.DataDir, p2p.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	y := gossip.VoidEntryAt(1, "")
	raw, err := gossip.SignEntryOp(key, netID, gossip.KindRatify, y, gossip.OpID{}, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	withDatastore(t, cfg, func(ds datastore.Batching) {
		putOp(t, ds, raw, netID)
		if err := ds.Put(context.Background(), datastore.NewKey(fmt.Sprintf("/gossip/final/%020d", 1)), []byte(y.Hash())); err != nil {
			t.Fatal(err)
		}
	})

	nd = startNode(t, cfg)
	defer nd.Close(context.Background())
	deadline := time.Now().Add(20 * time.Second)
	for !nd.Upgrades().Status().Paused {
		if time.Now().After(deadline) {
			t.Fatal("the executor did not halt")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := nd.Upgrades().Status()
	if !strings.Contains(st.PausedReason, "conflicting execution log") || !strings.Contains(st.PausedReason, y.Hash()) {
		t.Fatalf("paused reason %q", st.PausedReason)
	}
	_, upg, _ := nd.APIBackends()
	s, err := upg.Status(context.Background())
	if err != nil || !s.Halted {
		t.Fatalf("API status %+v %v", s, err)
	}
	var halts int
	for _, h := range nd.Upgrades().History() {
		if h.Event == upgrade.EventHalt {
			halts++
		}
	}
	if halts != 1 {
		t.Fatalf("%d halt records", halts)
	}
}

// TestCorruptDatastoreNamesTheRecord: a datastore holding a vote whose
// dependency is not a proposal (and a record that is not an op at all)
// does not crash the node: start fails with an error naming the records
// and how to recover; with Repair the node drops them and starts.
func TestCorruptDatastoreNamesTheRecord(t *testing.T) {
	cfg := initDir(t)
	nd := startNode(t, cfg)
	runTinyUpgrade(t, nd)
	netID := nd.NetID()
	log := nd.Gossip().ExecutionLog()
	nd.Close(context.Background())
	key, err := p2p.LoadIdentity(filepath.Join(cfg.DataDir, p2p.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	// A ratify op whose dep is a ratify op, not a proposal: decodes and
	// verifies, but cannot be loaded.
	var depID gossip.OpID
	withDatastore(t, cfg, func(ds datastore.Batching) {
		res, err := ds.Get(context.Background(), datastore.NewKey("/gossip/final/00000000000000000001"))
		if err != nil || string(res) != log[0].Hash() {
			t.Fatalf("final mark %q %v", res, err)
		}
		// Any op ID that is not a proposal's: the void entry's own op.
		void := gossip.VoidEntryAt(2, log[0].Hash())
		vraw, err := gossip.SignEntryOp(key, netID, gossip.KindRatify, void, gossip.OpID{}, 7)
		if err != nil {
			t.Fatal(err)
		}
		vop, _ := gossip.DecodeOp(vraw, netID)
		depID = vop.ID
		e := log[0]
		e.Seq, e.PrevEntryHash = 2, log[0].Hash()
		raw, err := gossip.SignEntryOp(key, netID, gossip.KindRatify, e, depID, 8)
		if err != nil {
			t.Fatal(err)
		}
		putOp(t, ds, raw, netID)
		if err := ds.Put(context.Background(), datastore.NewKey("/gossip/ops/zz"), []byte("garbage")); err != nil {
			t.Fatal(err)
		}
	})
	_, err = node.New(context.Background(), cfg)
	if !errors.Is(err, gossip.ErrCorruptStore) || !strings.Contains(err.Error(), "/gossip/ops/zz") ||
		!strings.Contains(err.Error(), "--repair") || !strings.Contains(err.Error(), depID.String()) {
		t.Fatalf("start with a corrupt datastore: %v", err)
	}
	cfg.Repair = true
	nd = startNode(t, cfg)
	defer nd.Close(context.Background())
	if got := nd.Gossip().ExecutionLog(); len(got) != 1 || got[0] != log[0] {
		t.Fatalf("after repair: %+v", got)
	}
}
