package raftnet_test

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/raftnet"
)

// Example shows how node/ wires the service: the host, a Governance backed
// by the op set, the validator set read from the network state and the
// genesis validators for the first bootstrap.
func Example() {
	var (
		h          host.Host            // the node's libp2p host
		gov        raftnet.Governance   // adapter over gossip/'s views
		validators func() []peer.ID     // global.validators of the current state
		genesisVal []peer.ID            // the genesis document's validators
		dataDir    = "/var/lib/synapse" // <data>
		netID      = "00000000deadbeef"
	)
	if h == nil {
		return // wiring sketch only
	}
	cfg := raftnet.DefaultConfig()
	cfg.Dir = filepath.Join(dataDir, "raft")
	cfg.NetworkID = netID
	svc, err := raftnet.New(context.Background(), cfg, raftnet.Deps{
		Host: h, Governance: gov, Validators: validators,
		GenesisValidators: genesisVal, Logger: slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		panic(err)
	}
	defer svc.Close(context.Background())
	events, stop := svc.Events()
	defer stop()
	for ev := range events {
		if ev.Kind == raftnet.EventRatified {
			slog.Info("signed", "seq", ev.Seq, "entry", ev.EntryHash)
		}
	}
}
