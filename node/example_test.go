package node_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// A node from an empty data directory: Init writes an identity,
// config.json and a single-node dev genesis in which this node is the only
// validator; New opens the directory and builds every component; Start
// joins the network, starts raft, the executor and the API. `synapse-p2p
// init` and `synapse-p2p daemon` do the same.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "synapse-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := node.DefaultConfig(dir)
	cfg.P2P = p2p.LoopbackConfig() // 127.0.0.1, random ports, no mDNS or NAT services
	cfg.API.Addr = "127.0.0.1:0"
	if _, err := node.Init(cfg, ""); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.New(ctx, cfg) // node.WithLogger(...) to see its logs
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(ctx)
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}

	version, _, _ := n.Upgrades().State()
	fmt.Println("network state version:", version)
	fmt.Println("validators:", len(n.Rules().Validators))
	// Output:
	// network state version: 1.0.0
	// validators: 1
}
