package simnet_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// Three nodes on 127.0.0.1, one of them the validator, sharing a devnet
// genesis; Start returns once every node runs, WaitConnected once each has
// its peers. RunDemo would then carry an upgrade through them (see
// `synapse-p2p simnet --demo`).
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := simnet.DefaultConfig()
	cfg.Nodes, cfg.Validators = 3, 1
	cfg.APIBasePort = -1 // no HTTP APIs
	net, err := simnet.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer net.Close(context.Background())
	if err := net.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}

	for i, n := range net.Nodes {
		version, _, _ := n.Upgrades().State()
		fmt.Printf("node %d: version %s, validator %v\n", i, version, n.Rules().IsValidator(n.ID()))
	}
	// Output:
	// node 0: version 1.0.0, validator true
	// node 1: version 1.0.0, validator false
	// node 2: version 1.0.0, validator false
}
