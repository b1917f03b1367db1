package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/synapse-p2p/synapse-p2p/node"
)

func cmdDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("daemon", "[--data DIR] [--listen MA]... [--bootstrap MA]... [--api ADDR] [--repair]", stderr)
	data := dataFlag(fs)
	var listen, bootstrap listFlag
	fs.Var(&listen, "listen", "multiaddr to listen on, repeatable (env SYNAPSE_LISTEN, comma-separated)")
	fs.Var(&bootstrap, "bootstrap", "bootstrap peer multiaddr with /p2p/ID, repeatable (env SYNAPSE_BOOTSTRAP)")
	api := fs.String("api", "", "REST API address host:port, \"off\" to disable (env SYNAPSE_API; default 127.0.0.1:8000)")
	apiToken := fs.String("api-token", "", "bearer token for mutating API calls (env SYNAPSE_API_TOKEN)")
	mdns := fs.Bool("mdns", true, "discover peers on the local network (env SYNAPSE_MDNS)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env SYNAPSE_LOG_LEVEL)")
	repair := fs.Bool("repair", false, "drop datastore records that cannot be loaded instead of refusing to start (they are fetched again from peers)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := node.LoadConfig(*data, nil)
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	if set["listen"] {
		cfg.P2P.ListenAddrs = listen
	}
	if set["bootstrap"] {
		cfg.P2P.Bootstrap = bootstrap
	}
	if set["api"] {
		cfg.API.Addr = *api
		if *api == "off" {
			cfg.API.Addr = ""
		}
	}
	if set["api-token"] {
		cfg.API.Token = *apiToken
	}
	if set["mdns"] {
		cfg.P2P.MDNS = *mdns
	}
	if set["log-level"] {
		cfg.LogLevel = *logLevel
	}
	cfg.Repair = *repair
	log, err := node.NewLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	n, err := node.New(ctx, cfg, node.WithLogger(log))
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		n.Close(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "peer id: %s\nnetwork: %s\n", n.ID(), n.NetID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(stdout, "listen:  %s\n", a)
	}
	if a := n.APIAddr(); a != "" {
		fmt.Fprintf(stdout, "api:     http://%s\n", a)
	}
	<-ctx.Done()
	log.Info("shutting down")
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return n.Close(cctx)
}
