package main

import (
	"context"
	"fmt"
	"io"

	"github.com/synapse-p2p/synapse-p2p/node"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "[--data DIR] [--genesis FILE]", stderr)
	data := dataFlag(fs)
	genesisFile := fs.String("genesis", "", "genesis file to join (default: a new single-node dev network)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg := node.DefaultConfig(*data)
	res, err := node.Init(cfg, *genesisFile)
	if err != nil {
		return err
	}
	state := func(created bool) string {
		if created {
			return "created"
		}
		return "kept"
	}
	fmt.Fprintf(stdout, "data dir: %s\npeer id:  %s (%s)\nconfig:   %s\ngenesis:  network %s (%s)\n",
		*data, res.PeerID, state(res.CreatedKey), state(res.CreatedConfig), res.NetID, state(res.CreatedGenesis))
	return nil
}
