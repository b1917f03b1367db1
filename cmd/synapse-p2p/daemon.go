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
	flags := addConfigFlags(fs)
	repair := fs.Bool("repair", false, "drop datastore records that cannot be loaded instead of refusing to start (they are fetched again from peers)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, _, err := flags.loadConfig(*data)
	if err != nil {
		return err
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
