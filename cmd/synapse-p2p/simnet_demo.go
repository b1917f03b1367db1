package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// runDemo carries the example upgrade through a running simnet and prints
// the timeline and every node's outcome, as text or as one JSON document.
func runDemo(ctx context.Context, net *simnet.Net, pkg string, jsonOut bool, stdout io.Writer) error {
	var progress io.Writer
	if !jsonOut {
		progress = stdout
		fmt.Fprintln(stdout, "demo: proposing an upgrade to 1.2.0 from node 0 (ipfs://), every node votes")
	}
	res, err := net.RunDemo(ctx, simnet.DemoOptions{Package: pkg, Progress: progress})
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(res); encErr != nil && err == nil {
			err = encErr
		}
		return err
	}
	if res.ProposalID != "" {
		fmt.Fprintf(stdout, "\nproposal %s, entry seq %d, package %s (%s, %d bytes)\n", res.ProposalID, res.Seq, res.PackageURL,
			res.Package, res.PackageSize)
	}
	fmt.Fprintf(stdout, "%-4s %-52s %-8s %-9s %s\n", "node", "peer id", "version", "executed", "state sha256")
	for i, nd := range res.Nodes {
		fmt.Fprintf(stdout, "%-4d %-52s %-8s %-9v %s\n", i, nd.PeerID, nd.Version, nd.Executed, nd.StateHash)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nall %d nodes executed the upgrade and agree on the state hash\n", len(res.Nodes))
	return nil
}
