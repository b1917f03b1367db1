package simnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
)

// Stages of the demo timeline, in order.
var Stages = []string{"proposed", "visible_everywhere", "approved", "ratified", "final", "fetched", "executed_all"}

// Demo packages: DemoOptions.Package names one of these or a file.
const (
	// DemoPackageRust is the Rust add-feature-flag (examples/upgrades/
	// add-feature-flag-rs): its committed .wasm, about 60 KB, a fraction of
	// the Go package's CPU per execution (docs/benchmarks.md). The default.
	DemoPackageRust = "rust"
	// DemoPackageGo is the Go add-feature-flag, built with the Go
	// toolchain: 3.3 MB, about 0.5 s of CPU per execution.
	DemoPackageGo = "go"
)

// DemoOptions configure RunDemo.
type DemoOptions struct {
	// Package is what to propose: DemoPackageRust (also when empty),
	// DemoPackageGo, or the path of a .wasm file (write ./rust for a file
	// named rust).
	Package string
	// Version is the version the package upgrades to (default 1.2.0, the
	// example's).
	Version string
	// Progress receives one line per stage as it is reached (nil: none).
	Progress io.Writer
}

// DemoNode is one node's outcome.
type DemoNode struct {
	PeerID    string `json:"peer_id"`
	Version   string `json:"version"`
	StateHash string `json:"state_hash"`
	Executed  bool   `json:"executed"`
}

// DemoResult is the outcome of RunDemo.
type DemoResult struct {
	ProposalID string `json:"proposal_id"`
	// Package is the file proposed (the example's name for the built-in
	// packages) and PackageSize its size in bytes.
	Package     string           `json:"package"`
	PackageSize int64            `json:"package_size"`
	PackageURL  string           `json:"package_url"`
	Seq         uint64           `json:"seq"`
	Nodes       []DemoNode       `json:"nodes"`
	Timeline    map[string]int64 `json:"timeline"`
	// AllExecuted is true when every node executed the entry successfully
	// and all reached the same state hash.
	AllExecuted bool `json:"all_executed"`
	// LeaderChanges counts the raft leader changes the validators saw
	// while the demo ran (0 on a stable network); MaxHeartbeatLagMs is the
	// longest a validator went without hearing from the leader, sampled
	// every 20 ms (raft campaigns past raft.heartbeat_timeout).
	LeaderChanges     uint64 `json:"leader_changes"`
	MaxHeartbeatLagMs int64  `json:"max_heartbeat_lag_ms"`
}

// RunDemo carries one real upgrade through the network: node 0 imports the
// package into its content store and proposes it as ipfs://CID, every node
// votes for it, the validators ratify it and every node fetches it over
// bitswap and executes it. The timeline is in milliseconds since the
// proposal was published.
func (n *Net) RunDemo(ctx context.Context, opts DemoOptions) (res DemoResult, err error) {
	if opts.Version == "" {
		opts.Version = "1.2.0"
	}
	label := opts.Package
	example := ""
	switch opts.Package {
	case "", DemoPackageRust:
		example = "add-feature-flag-rs"
	case DemoPackageGo:
		example = "add-feature-flag"
	}
	if example != "" {
		label = example
		dir, err := os.MkdirTemp("", "synapse-demo-pkg-*")
		if err != nil {
			return DemoResult{}, err
		}
		defer os.RemoveAll(dir)
		if opts.Package, err = examplebuild.Build(ctx, example, dir); err != nil {
			return DemoResult{}, fmt.Errorf("simnet: build example package: %w", err)
		}
	}
	f, err := os.Open(opts.Package)
	if err != nil {
		return DemoResult{}, fmt.Errorf("simnet: %w", err)
	}
	defer f.Close()
	origin := n.Nodes[0]
	gov, _, pkgs := origin.APIBackends()
	info, err := pkgs.AddPackage(ctx, f)
	if err != nil {
		return DemoResult{}, fmt.Errorf("simnet: import package: %w", err)
	}

	res = DemoResult{Package: label, PackageSize: info.Size, PackageURL: info.URL, Timeline: map[string]int64{}}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "  package %s: %d bytes, %s\n", label, info.Size, info.URL)
	}
	p, err := gov.Propose(ctx, httpapi.ProposeRequest{
		Title:       "Add feature flag",
		Description: "Sets new_feature_enabled on every node (simnet demo)",
		Version:     opts.Version,
		PackageURL:  info.URL,
		PackageHash: info.SHA256,
		PackageSize: info.Size,
	})
	if err != nil {
		return DemoResult{}, fmt.Errorf("simnet: propose: %w", err)
	}
	start := time.Now()
	res.ProposalID = p.ProposalID
	changes0 := n.leaderChanges()
	defer func() { res.LeaderChanges = n.leaderChanges() - changes0 }()
	mark := func(stage string) {
		if _, ok := res.Timeline[stage]; ok {
			return
		}
		res.Timeline[stage] = time.Since(start).Milliseconds()
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "  %-20s %6d ms\n", stage, res.Timeline[stage])
		}
	}
	mark("proposed")

	voted := make([]bool, len(n.Nodes))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		n.demoStep(ctx, &res, voted, mark)
		if _, ok := res.Timeline["executed_all"]; ok {
			break
		}
		select {
		case <-ctx.Done():
			n.demoOutcome(&res)
			return res, fmt.Errorf("simnet: demo stopped before every node executed the upgrade (reached: %v): %w", reached(res.Timeline), ctx.Err())
		case <-t.C:
		}
	}
	n.demoOutcome(&res)
	if !res.AllExecuted {
		return res, fmt.Errorf("simnet: the upgrade did not execute identically on every node")
	}
	return res, nil
}

// demoStep looks at every node once and marks the stages reached.
func (n *Net) demoStep(ctx context.Context, res *DemoResult, voted []bool, mark func(string)) {
	visible, final, executed, fetched := 0, 0, 0, 0
	for i, nd := range n.Nodes {
		res.MaxHeartbeatLagMs = max(res.MaxHeartbeatLagMs, nd.Raft().HeartbeatLag().Milliseconds())
		gov, _, _ := nd.APIBackends()
		p, err := gov.Proposal(ctx, res.ProposalID)
		if err != nil {
			continue
		}
		visible++
		if !voted[i] {
			if _, err := gov.Vote(ctx, res.ProposalID, "approval"); err == nil {
				voted[i] = true
			}
		}
		if i == 0 && p.Status != "voting" && p.Status != "rejected" {
			mark("approved")
		}
		for _, e := range nd.Gossip().ExecutionLog() {
			if e.ProposalID == res.ProposalID {
				final++
				res.Seq = e.Seq
			}
		}
		if nd.Raft().IsLeader() {
			for _, e := range nd.Raft().Slots() {
				if e.ProposalID == res.ProposalID {
					mark("ratified")
				}
			}
		}
		if !nd.FetchedAt(cidOf(res.PackageURL)).IsZero() || i == 0 {
			fetched++
		}
		if res.Seq > 0 && nd.Upgrades().LastExecutedSeq() >= res.Seq {
			executed++
		}
	}
	if visible == len(n.Nodes) {
		mark("visible_everywhere")
	}
	if final == len(n.Nodes) {
		mark("ratified") // a follower-only view still proves ratification
		mark("final")
	}
	if fetched == len(n.Nodes) {
		mark("fetched")
	}
	if executed == len(n.Nodes) {
		mark("fetched")
		mark("executed_all")
	}
}

func (n *Net) demoOutcome(res *DemoResult) {
	res.Nodes = nil
	hashes := map[string]bool{}
	all := true
	for _, nd := range n.Nodes {
		st := nd.Upgrades().Status()
		dn := DemoNode{PeerID: nd.ID().String(), Version: st.CurrentVersion, StateHash: st.StateSHA256}
		if res.Seq > 0 {
			for _, h := range nd.Upgrades().History() {
				if h.Seq == res.Seq && h.Success {
					dn.Executed = true
				}
			}
		}
		all = all && dn.Executed
		hashes[dn.StateHash] = true
		res.Nodes = append(res.Nodes, dn)
	}
	res.AllExecuted = all && len(hashes) == 1
}

// leaderChanges sums the raft leader changes every node saw.
func (n *Net) leaderChanges() uint64 {
	var sum uint64
	for _, nd := range n.Nodes {
		if nd != nil {
			sum += nd.Raft().LeaderChanges()
		}
	}
	return sum
}

func cidOf(url string) string {
	const p = "ipfs://"
	if len(url) > len(p) && url[:len(p)] == p {
		return url[len(p):]
	}
	return url
}

func reached(tl map[string]int64) []string {
	var out []string
	for _, s := range Stages {
		if _, ok := tl[s]; ok {
			out = append(out, s)
		}
	}
	return slices.Clip(out)
}
