package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"
	badger "github.com/ipfs/go-ds-badger"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// Two nodes on namespaces of one shared badger store: each writes only
// under its own namespace, neither opens <data>/datastore, and closing
// them leaves the shared store open.
func TestWithDatastoreSharesOneStore(t *testing.T) {
	opts := node.DatastoreOptions()
	shared, err := badger.NewDatastore(t.TempDir(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	ctx := context.Background()
	var nodes []*node.Node
	for i, ns := range []string{"/n0", "/n1"} {
		cfg := initDir(t)
		cfg.API.Addr = ""
		n, err := node.New(ctx, cfg, node.WithDatastore(namespace.Wrap(shared, datastore.NewKey(ns))),
			node.WithHostOptions(p2p.WithoutRelay()))
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		if _, err := os.Stat(filepath.Join(cfg.DataDir, node.DatastoreDir)); !os.IsNotExist(err) {
			t.Fatalf("node %d opened its own datastore (%v)", i, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.Close(cctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := shared.Query(ctx, query.Query{KeysOnly: true})
	if err != nil {
		t.Fatalf("shared store closed with the nodes: %v", err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range all {
		ns, _, _ := strings.Cut(strings.TrimPrefix(e.Key, "/"), "/")
		seen[ns]++
	}
	if len(seen) != 2 || seen["n0"] == 0 || seen["n1"] == 0 {
		t.Fatalf("keys by top namespace: %v, want records under n0 and n1 only", seen)
	}
}
