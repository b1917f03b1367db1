package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
)

func cmdSimnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simnet", "[--nodes N] [--validators V] [--api-base-port P] [--wait]", stderr)
	def := simnet.DefaultConfig()
	nodes := fs.Int("nodes", def.Nodes, "number of nodes")
	validators := fs.Int("validators", def.Validators, "number of validators (capped at --nodes)")
	apiBase := fs.Int("api-base-port", 0, "node i serves its API on 127.0.0.1:P+i (0: random ports, -1: no API)")
	dir := fs.String("dir", "", "keep data directories here (default: a temporary directory, removed at exit)")
	wait := fs.Bool("wait", false, "keep running until interrupted")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the swarm to connect")
	logLevel := fs.String("log-level", "warn", "node log level")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg := def
	cfg.Nodes = *nodes
	cfg.Validators = min(*validators, *nodes)
	if !flagsSet(fs)["validators"] && cfg.Validators < 1 {
		cfg.Validators = 1
	}
	cfg.APIBasePort = *apiBase
	cfg.Dir = *dir
	log, err := node.NewLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg.Log = log
	start := time.Now()
	net, err := simnet.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		net.Close(cctx)
	}()
	netID, _ := net.Genesis().NetID()
	fmt.Fprintf(stdout, "simnet: %d nodes (%d validators) on 127.0.0.1, network %s, started in %s\n",
		cfg.Nodes, cfg.Validators, netID, time.Since(start).Round(time.Millisecond))
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := net.WaitConnected(wctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "swarm connected after %s (every node has ≥ %d peers)\n\n", time.Since(start).Round(time.Millisecond), net.MinDegree())
	valSet := map[string]bool{}
	for _, v := range net.Genesis().Validators {
		valSet[v] = true
	}
	fmt.Fprintf(stdout, "%-4s %-10s %-52s %-5s %-22s %s\n", "node", "role", "peer id", "peers", "api", "listen")
	for i, nd := range net.Nodes {
		role := "member"
		if valSet[nd.ID().String()] {
			role = "validator"
		}
		api := nd.APIAddr()
		if api == "" {
			api = "-"
		}
		listen := ""
		if a := nd.Host().Addrs(); len(a) > 0 {
			listen = a[0].String()
		}
		fmt.Fprintf(stdout, "%-4d %-10s %-52s %-5d %-22s %s\n", i, role, nd.ID(), len(nd.Peers()), api, listen)
	}
	if *wait {
		fmt.Fprintln(stdout, "\nrunning; press Ctrl-C to stop")
		<-ctx.Done()
	}
	return nil
}
