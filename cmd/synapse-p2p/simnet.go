package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
)

func cmdSimnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simnet", "[--nodes N] [--validators V] [--api-base-port P] [--demo [--json] [--package rust|go|FILE]] [--wait]", stderr)
	def := simnet.DefaultConfig()
	nodes := fs.Int("nodes", def.Nodes, "number of nodes")
	validators := fs.Int("validators", def.Validators, "number of validators (capped at --nodes)")
	apiBase := fs.Int("api-base-port", 0, "node i serves its API on 127.0.0.1:P+i (0: random ports, -1: no API)")
	dir := fs.String("dir", "", "keep data directories here (default: a temporary directory, removed at exit)")
	wait := fs.Bool("wait", false, "keep running until interrupted (default without --demo)")
	demo := fs.Bool("demo", false, "carry a real upgrade through the network (build, propose, vote, ratify, fetch, execute) and exit 0 only if every node executed it")
	jsonOut := fs.Bool("json", false, "with --demo: print the outcome as one JSON document")
	pkg := fs.String("package", simnet.DemoPackageRust, "with --demo: the add-feature-flag example in Rust (rust: ~60 KB, committed .wasm) or Go (go: built with your Go toolchain, 3.3 MB, ~0.5 s CPU per execution), or a .wasm FILE of your own (it must upgrade to 1.2.0)")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the swarm to connect and, with --demo, for the upgrade")
	logLevel := fs.String("log-level", "error", "node log level (debug, info, warn, error)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	set := flagsSet(fs)
	if !*demo && (set["json"] || set["package"]) {
		return usagef("--json and --package need --demo")
	}
	cfg := def
	cfg.Nodes = *nodes
	cfg.Validators = min(*validators, *nodes)
	if !set["validators"] && cfg.Validators < 1 {
		cfg.Validators = 1
	}
	cfg.APIBasePort = *apiBase
	cfg.Dir = *dir
	log, level, err := node.NewLoggerVar(stderr, *logLevel)
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
		// Teardown closes nodes one by one; the others log every peer and
		// raft stream that goes away. That is expected, not news.
		level.Set(slog.LevelError + 4)
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		net.Close(cctx)
	}()
	text := stdout
	if *jsonOut {
		text = io.Discard
	}
	netID, _ := net.Genesis().NetID()
	fmt.Fprintf(text, "simnet: %d nodes (%d validators) on 127.0.0.1, network %s, started in %s\n",
		cfg.Nodes, cfg.Validators, netID, time.Since(start).Round(time.Millisecond))
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := net.WaitConnected(wctx); err != nil {
		return err
	}
	fmt.Fprintf(text, "swarm connected after %s (every node has ≥ %d peers)\n\n", time.Since(start).Round(time.Millisecond), net.MinDegree())
	valSet := map[string]bool{}
	for _, v := range net.Genesis().Validators {
		valSet[v] = true
	}
	fmt.Fprintf(text, "%-4s %-10s %-52s %-5s %-22s %s\n", "node", "role", "peer id", "peers", "api", "listen")
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
		fmt.Fprintf(text, "%-4d %-10s %-52s %-5d %-22s %s\n", i, role, nd.ID(), len(nd.Peers()), api, listen)
	}
	printDashboards(text, net)
	if *demo {
		fmt.Fprintln(text)
		dctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := runDemo(dctx, net, *pkg, *jsonOut, stdout); err != nil {
			return err
		}
		if !*wait {
			return nil
		}
	}
	if *wait || !*demo {
		fmt.Fprintln(text, "\nrunning; watch and drive the nodes from their dashboards, or with curl against the API addresses above (see README); Ctrl-C stops")
		<-ctx.Done()
	}
	return nil
}

// printDashboards lists each node's dashboard URL (the API's / page).
func printDashboards(w io.Writer, net *simnet.Net) {
	header := false
	for i, nd := range net.Nodes {
		addr := nd.APIAddr()
		if addr == "" {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\ndashboards (open in a browser; they update live):")
			header = true
		}
		fmt.Fprintf(w, "  node %-3d http://%s/\n", i, addr)
	}
}
