// Package simnet runs many synapse-p2p nodes in one process on 127.0.0.1:
// real hosts on real ports, each with its own data directory, sharing a
// generated devnet genesis and bootstrapping to node 0.
package simnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/partition"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// Config describes a simulated network.
type Config struct {
	// Nodes is the number of nodes (≥ 1).
	Nodes int
	// Validators is the number of validators among them (1 ≤ V ≤ Nodes).
	Validators int
	// Dir holds the nodes' data directories; empty means a temporary
	// directory that Close removes.
	Dir string
	// APIBasePort gives node i an API on 127.0.0.1:APIBasePort+i; 0 gives
	// each node a random free port; -1 disables the APIs.
	APIBasePort int
	// VotingPeriod is the governance voting period in seconds.
	VotingPeriod int64
	// Log receives every node's logs (nil: discard).
	Log *slog.Logger
	// Tune, if set, adjusts node i's configuration before it starts (tests
	// shorten raft timeouts, for example).
	Tune func(i int, c *node.Config)
	// Options, if set, adds options to node i's node.New.
	Options func(i int) []node.Option
}

// DefaultConfig is 8 nodes, 4 validators (tolerating one faulty one), random
// API ports.
func DefaultConfig() Config {
	return Config{Nodes: 8, Validators: 4, VotingPeriod: 60}
}

// Validate checks the sizes.
func (c Config) Validate() error {
	if c.Nodes < 1 {
		return fmt.Errorf("simnet: need at least 1 node, got %d", c.Nodes)
	}
	if c.Validators < 1 || c.Validators > c.Nodes {
		return fmt.Errorf("simnet: need 1 ≤ validators ≤ nodes, got %d validators for %d nodes", c.Validators, c.Nodes)
	}
	if c.APIBasePort < -1 || c.APIBasePort+c.Nodes > 65535 {
		return fmt.Errorf("simnet: api base port %d out of range", c.APIBasePort)
	}
	if c.VotingPeriod <= 0 {
		return fmt.Errorf("simnet: voting period must be positive")
	}
	return nil
}

// Net is a running simulated network.
type Net struct {
	cfg     Config
	dir     string
	ownDir  bool
	genesis *genesis.Genesis
	// Nodes are the running nodes; node i has data directory DataDir(i).
	// A stopped node's slot holds nil until RestartNode.
	Nodes []*node.Node
	// gaters[i] is node i's connection gater (Partition, Heal); it
	// outlives restarts.
	gaters []*partition.Gater
	cfgs   []node.Config
}

// Start creates identities, a devnet genesis and data directories, then
// starts node 0 and every other node with node 0 as bootstrap peer. It does
// not wait for the swarm to connect; see WaitConnected.
func Start(ctx context.Context, cfg Config) (_ *Net, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := &Net{cfg: cfg, dir: cfg.Dir}
	if n.dir == "" {
		if n.dir, err = os.MkdirTemp("", "synapse-simnet-*"); err != nil {
			return nil, fmt.Errorf("simnet: %w", err)
		}
		n.ownDir = true
	}
	defer func() {
		if err != nil {
			n.Close(context.Background())
		}
	}()

	keys, ids, err := genesis.NewDevnetKeys(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	n.genesis, err = genesis.Devnet("synapse-simnet", ids, cfg.Validators, cfg.VotingPeriod)
	if err != nil {
		return nil, err
	}
	genesisPath := filepath.Join(n.dir, "genesis.json")
	if err := n.genesis.Write(genesisPath); err != nil {
		return nil, err
	}

	for i := range keys {
		dir := n.DataDir(i)
		if err := p2p.WriteIdentity(filepath.Join(dir, p2p.IdentityFile), keys[i]); err != nil {
			return nil, err
		}
		c := node.DefaultConfig(dir)
		c.P2P = p2p.LoopbackConfig()
		// Compiled modules are keyed by module hash and wazero version, so
		// the nodes share one cache: a package compiles once per simnet.
		c.Upgrade.CompilationCacheDir = filepath.Join(n.dir, "wasm-cache")
		// Enough peers for a GossipSub mesh without every node dialling
		// every other one in large simulations.
		c.P2P.ConnLow = min(cfg.Nodes-1, 12)
		c.P2P.ConnHigh = max(c.P2P.ConnLow*3, 16)
		// Nodes behind NAT run the DHT as clients (p2p's "auto" mode finds
		// that out with AutoNAT); on loopback every node looks reachable,
		// so simnet decides: validators, node 0 (everyone's bootstrap peer)
		// and every tenth node serve it, the others only query. That keeps
		// routing tables and DHT traffic of large simulations small.
		if i >= cfg.Validators && i%10 != 0 {
			c.P2P.DHTMode = p2p.DHTModeClient
		}
		switch {
		case cfg.APIBasePort < 0:
			c.API.Addr = ""
		default:
			port := 0
			if cfg.APIBasePort > 0 {
				port = cfg.APIBasePort + i
			}
			c.API.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		if i > 0 {
			for _, a := range n.Nodes[0].Addrs() {
				c.P2P.Bootstrap = append(c.P2P.Bootstrap, a.String())
			}
		}
		if cfg.Tune != nil {
			cfg.Tune(i, &c)
		}
		if _, err := node.Init(c, genesisPath); err != nil {
			return nil, err
		}
		n.cfgs = append(n.cfgs, c)
		n.Nodes = append(n.Nodes, nil)
		if err := n.RestartNode(ctx, i); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// StopNode closes node i, as a crash or shutdown would; its data directory
// stays. Nodes[i] is nil until RestartNode.
func (n *Net) StopNode(ctx context.Context, i int) error {
	if i < 0 || i >= len(n.Nodes) || n.Nodes[i] == nil {
		return fmt.Errorf("simnet: node %d is not running", i)
	}
	err := n.Nodes[i].Close(ctx)
	n.Nodes[i] = nil
	return err
}

// RestartNode starts node i from its data directory (same identity, same
// listen and API configuration).
func (n *Net) RestartNode(ctx context.Context, i int) error {
	if i < 0 || i >= len(n.cfgs) {
		return fmt.Errorf("simnet: no node %d", i)
	}
	if n.Nodes[i] != nil {
		return fmt.Errorf("simnet: node %d is running", i)
	}
	opts := []node.Option{node.WithLogger(n.cfg.Log.With("node", i)),
		node.WithHostOptions(p2p.WithLibp2pOptions(libp2p.ConnectionGater(n.gater(i))))}
	if n.cfg.Options != nil {
		opts = append(opts, n.cfg.Options(i)...)
	}
	nd, err := node.New(ctx, n.cfgs[i], opts...)
	if err != nil {
		return fmt.Errorf("simnet: node %d: %w", i, err)
	}
	if err := nd.Start(ctx); err != nil {
		nd.Close(ctx)
		return fmt.Errorf("simnet: node %d: %w", i, err)
	}
	n.Nodes[i] = nd
	return nil
}

// gater returns node i's connection gater, made on first use.
func (n *Net) gater(i int) *partition.Gater {
	for len(n.gaters) <= i {
		n.gaters = append(n.gaters, partition.NewGater())
	}
	return n.gaters[i]
}

// Partition cuts the network into the given groups of node indices:
// nodes in different groups refuse each other's connections and their
// open connections close, as in a network partition; nodes in no group
// keep talking to everyone. Heal undoes it.
func (n *Net) Partition(groups ...[]int) error {
	members := make([][]partition.Member, len(groups))
	for g, idx := range groups {
		for _, i := range idx {
			if i < 0 || i >= len(n.Nodes) || n.Nodes[i] == nil {
				return fmt.Errorf("simnet: partition: node %d is not running", i)
			}
			members[g] = append(members[g], partition.Member{Host: n.Nodes[i].Host().Host, Gater: n.gater(i)})
		}
	}
	for a := range members {
		for b := a + 1; b < len(members); b++ {
			partition.Cut(members[a], members[b])
		}
	}
	return nil
}

// Heal ends every partition: all nodes accept each other again, and each
// node redials its bootstrap peer so the swarm reforms without waiting for
// discovery.
func (n *Net) Heal(ctx context.Context) {
	for _, g := range n.gaters {
		g.UnblockAll()
	}
	boot := n.Nodes[0]
	for _, nd := range n.Nodes[1:] {
		if nd != nil && boot != nil {
			nd.Host().Connect(ctx, boot.Host().AddrInfo()) // best effort: discovery reconnects the rest
		}
	}
}

// Genesis is the network's genesis.
func (n *Net) Genesis() *genesis.Genesis { return n.genesis }

// Dir is the directory holding the genesis and the data directories.
func (n *Net) Dir() string { return n.dir }

// DataDir is node i's data directory.
func (n *Net) DataDir(i int) string { return filepath.Join(n.dir, fmt.Sprintf("node%02d", i)) }

// MinDegree is how many simnet peers each node must be connected to for
// WaitConnected: all others in small networks, 4 in larger ones.
func (n *Net) MinDegree() int { return min(len(n.Nodes)-1, 4) }

// Connected reports whether the simnet nodes form one connected graph and
// every node has at least MinDegree simnet peers.
func (n *Net) Connected() bool {
	index := map[peer.ID]int{}
	for i, nd := range n.Nodes {
		index[nd.ID()] = i
	}
	adj := make([][]int, len(n.Nodes))
	for i, nd := range n.Nodes {
		for _, p := range nd.Host().Network().Peers() {
			if j, ok := index[p]; ok && nd.Host().Network().Connectedness(p) == network.Connected {
				adj[i] = append(adj[i], j)
			}
		}
		if len(adj[i]) < n.MinDegree() {
			return false
		}
	}
	seen := make([]bool, len(n.Nodes))
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range adj[i] {
			if !seen[j] {
				seen[j] = true
				count++
				stack = append(stack, j)
			}
		}
	}
	return count == len(n.Nodes)
}

// WaitConnected polls until Connected or ctx ends.
func (n *Net) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !n.Connected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("simnet: swarm not connected: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Close stops every node (in reverse order) and removes the directory if
// Start created it. Safe to call twice.
func (n *Net) Close(ctx context.Context) error {
	var errs []error
	for i := len(n.Nodes) - 1; i >= 0; i-- {
		if n.Nodes[i] != nil {
			errs = append(errs, n.Nodes[i].Close(ctx))
		}
	}
	n.Nodes = nil
	if n.ownDir && n.dir != "" {
		errs = append(errs, os.RemoveAll(n.dir))
		n.dir = ""
	}
	return errors.Join(errs...)
}
