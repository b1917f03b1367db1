package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// idOutput is what `synapse-p2p id --json` prints. Without a running
// daemon only peer_id and addrs (the configured listen addresses) are
// known; running is false and reachability "unknown".
type idOutput struct {
	PeerID  string   `json:"peer_id"`
	Addrs   []string `json:"addrs"`
	Running bool     `json:"running"`
	// API is the daemon API that was asked; APIError why it did not
	// answer for this node.
	API      string `json:"api"`
	APIError string `json:"api_error,omitempty"`
	httpapi.Reachability
}

func cmdID(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("id", "[--data DIR] [--api ADDR] [--json]", stderr)
	data := dataFlag(fs)
	api := fs.String("api", "", "the daemon's API address (default: api.addr of the node's config)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := node.LoadConfig(*data, nil)
	if err != nil {
		return err
	}
	key, err := p2p.LoadIdentity(filepath.Join(*data, p2p.IdentityFile))
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	out := idOutput{PeerID: id.String(), API: *api, Reachability: httpapi.Reachability{Reachability: p2p.ReachabilityUnknown,
		ReachableAddrs: []string{}, UnreachableAddrs: []string{}, RelayAddrs: []string{}, Relays: []string{}}}
	if out.API == "" {
		out.API = cfg.API.Addr
	}
	for _, s := range cfg.P2P.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		out.Addrs = append(out.Addrs, a.Encapsulate(ma.StringCast("/p2p/"+id.String())).String())
	}
	if out.API == "" {
		out.APIError = "the API is off in this node's config"
	} else if live, err := askDaemonID(ctx, out.API, id); err != nil {
		out.APIError = err.Error()
	} else {
		out.Running = true
		out.Addrs = live.Addrs
		if live.Reachability != nil {
			out.Reachability = *live.Reachability
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintln(stdout, id)
	if !out.Running {
		fmt.Fprintf(stdout, "reachability: unknown (no running daemon: %s)\n", out.APIError)
		fmt.Fprintln(stdout, "listen addresses (config):")
	} else {
		fmt.Fprintf(stdout, "reachability: %s\n", out.Reachability.Reachability)
		if out.RelayService {
			fmt.Fprintln(stdout, "relay service: on (relaying for others)")
		}
		fmt.Fprintln(stdout, "addresses (announced):")
	}
	for _, a := range out.Addrs {
		fmt.Fprintln(stdout, "  "+a)
	}
	if out.Running {
		if len(out.RelayAddrs) > 0 {
			fmt.Fprintln(stdout, "relay addresses:")
			for _, a := range out.RelayAddrs {
				fmt.Fprintln(stdout, "  "+a)
			}
		} else {
			fmt.Fprintln(stdout, "relay addresses: none")
		}
		for _, a := range out.ReachableAddrs {
			fmt.Fprintln(stdout, "reachable (AutoNAT v2): "+a)
		}
		for _, a := range out.UnreachableAddrs {
			fmt.Fprintln(stdout, "unreachable (AutoNAT v2): "+a)
		}
	}
	return nil
}

// askDaemonID asks the daemon at api for GET /id and checks that it is the
// node with peer ID want.
func askDaemonID(ctx context.Context, api string, want peer.ID) (httpapi.IDJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var got httpapi.IDJSON
	if err := newClient(api, "").do(ctx, "GET", "/id", "", nil, &got); err != nil {
		return got, err
	}
	if got.ID != want.String() {
		return got, fmt.Errorf("the API at %s belongs to another node (%s)", api, got.ID)
	}
	return got, nil
}
