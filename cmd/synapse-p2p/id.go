package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

func cmdID(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("id", "[--data DIR] [--json]", stderr)
	data := dataFlag(fs)
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
	var addrs []string
	for _, s := range cfg.P2P.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		addrs = append(addrs, a.Encapsulate(ma.StringCast("/p2p/"+id.String())).String())
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"peer_id": id.String(), "addrs": addrs})
	}
	fmt.Fprintln(stdout, id)
	for _, a := range addrs {
		fmt.Fprintln(stdout, a)
	}
	return nil
}
