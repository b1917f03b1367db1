package simnet_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/simnet"
)

func TestSimnetConnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := simnet.DefaultConfig()
	cfg.Nodes, cfg.Validators = 6, 3
	net, err := simnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close(context.Background())
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, n := range net.Nodes {
		ids[n.NetID()] = true
		if n.APIAddr() == "" {
			t.Fatal("node without API")
		}
	}
	if len(ids) != 1 {
		t.Fatalf("nodes on %d networks", len(ids))
	}
	if len(net.Genesis().Validators) != 3 {
		t.Fatalf("%d validators", len(net.Genesis().Validators))
	}
	dir := net.Dir()
	if err := net.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := net.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temporary directory %s left behind (%v)", dir, err)
	}
}

func TestSimnetConfigErrors(t *testing.T) {
	for _, c := range []simnet.Config{
		{Nodes: 0, Validators: 1, VotingPeriod: 1},
		{Nodes: 2, Validators: 3, VotingPeriod: 1},
		{Nodes: 2, Validators: 1, VotingPeriod: 0},
	} {
		if _, err := simnet.Start(context.Background(), c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
