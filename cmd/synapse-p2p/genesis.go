package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

func cmdGenesis(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: synapse-p2p genesis new --validators N [--nodes M] --out FILE [--keys DIR]")
			return nil
		}
		return usagef("want: genesis new --validators N --out FILE")
	}
	fs := newFlags("genesis new", "--validators N [--nodes M] --out FILE [--keys DIR]", stderr)
	validators := fs.Int("validators", 1, "number of validators")
	nodes := fs.Int("nodes", 0, "number of member nodes (default: the number of validators)")
	out := fs.String("out", "", "genesis file to write")
	keys := fs.String("keys", "", "directory for the identities: <keys>/node<i>/identity.key (default: beside --out)")
	name := fs.String("name", "synapse-devnet", "network name")
	period := fs.Int64("voting-period", 300, "voting period in seconds")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *nodes == 0 {
		*nodes = *validators
	}
	if *validators < 1 || *nodes < *validators {
		return usagef("need 1 ≤ validators ≤ nodes (got %d validators, %d nodes)", *validators, *nodes)
	}
	if *keys == "" {
		*keys = filepath.Join(filepath.Dir(*out), "keys")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite a genesis", *out)
	}
	ids := make([]peer.ID, *nodes)
	for i := range ids {
		path := filepath.Join(*keys, fmt.Sprintf("node%d", i), p2p.IdentityFile)
		key, _, err := p2p.LoadOrCreateIdentity(path)
		if err != nil {
			return err
		}
		if ids[i], err = peer.IDFromPrivateKey(key); err != nil {
			return err
		}
	}
	g, err := genesis.Devnet(*name, ids, *validators, *period)
	if err != nil {
		return err
	}
	if err := g.Write(*out); err != nil {
		return err
	}
	netID, _ := g.NetID()
	fmt.Fprintf(stdout, "genesis: %s (network %s)\n", *out, netID)
	for i, id := range ids {
		role := "member"
		if i < *validators {
			role = "validator"
		}
		fmt.Fprintf(stdout, "node%d %s %s  (synapse-p2p init --data %s --genesis %s)\n", i, role, id,
			filepath.Join(*keys, fmt.Sprintf("node%d", i)), *out)
	}
	return nil
}
