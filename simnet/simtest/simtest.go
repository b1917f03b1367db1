// Package simtest runs many synapse-p2p nodes — the same node code as a
// daemon: gossip, raft over libp2p streams, bitswap, the executor — on
// go-libp2p's simulated network (x/simlibp2p: QUIC over in-memory links of
// github.com/marcopolo/simnet with a latency per pair of nodes and a
// bandwidth per node), for use inside testing/synctest: time is virtual, so
// a 1000-node network with WAN latencies fits on two cores, and every
// figure it reports is virtual time.
//
// No packet leaves the process: each host has only the QUIC transport, and
// its UDP endpoint is an in-memory simnet endpoint (the addresses exist only
// in the simulated router). Config.Streams replaces it with this package's
// own simulated network, which carries libp2p connections and streams
// directly (memnet.go): the same latency and bandwidth model at a third
// less CPU, which 1000 nodes need. The nodes share one badger store, a
// namespace each (node.WithDatastore), one cache of verified op signatures
// (node.WithSignatureCache), and run guest code in process
// (upgrade.IsolationInProcess): a child process cannot run in a synctest
// bubble.
//
// Start and Close must run inside one synctest bubble (synctest.Test), and
// Close must end every goroutine the nodes started, or synctest fails the
// test. The real-loopback simnet (package simnet) stays the harness of the
// README's demo.
package simtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	badger "github.com/ipfs/go-ds-badger"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// Config describes a simulated network.
type Config struct {
	// Nodes is the number of nodes (≥ 2); the first Validators of them
	// are the genesis validators, node 0 proposes in RunStory.
	Nodes      int
	Validators int
	// Dir holds the shared store, the genesis and the nodes' data
	// directories (required; a test's t.TempDir()).
	Dir string
	// Latency is the one-way latency between two nodes (default
	// DefaultLatency: 20–150 ms, median 50 ms).
	Latency Latency
	// BitsPerSecond is every node's uplink and downlink bandwidth
	// (default 20 Mbit/s).
	BitsPerSecond int
	// Streams puts the nodes on simulated byte streams (memnet.go: libp2p's
	// TLS and yamux over in-memory pipes, with the same latency and
	// bandwidth model) instead of QUIC packets through x/simlibp2p's
	// router: several times cheaper per message, which is what lets 1000
	// nodes run on two cores.
	Streams bool
	// Bootstrap is how many random other nodes each node keeps as
	// bootstrap peers (default 3), the first of them a DHT server (as a
	// real network's bootstrap nodes are); discovery adds more up to
	// ConnLow.
	Bootstrap int
	// ConnLow and ConnHigh are the connection manager's watermarks
	// (default 4 and 64). ConnHigh leaves room for the nodes many others
	// picked as bootstrap peers: with 20, trimming pushed nodes below
	// ConnLow, they redialled, and 300 nodes spent their CPU on handshakes.
	ConnLow, ConnHigh int
	// DHTServers is how many nodes after the validators run their DHT in
	// server mode, as a real network's bootstrap nodes do (default: as
	// many as there are validators; fewer when the network is smaller).
	// Everyone else is a DHT client, as nodes behind NAT are: every node
	// ends up connected to most DHT servers (its lookups dial the closest
	// ones), so their number sets the connections — handshakes, QUIC
	// state, goroutines — per node. With 17 servers in 300 nodes each node
	// had 31 connections, and setting them up was most of the simulation's
	// CPU. They are not the validators: a validator connected to all 1000
	// nodes spent its 20 Mbit/s uplink on GossipSub's lazy gossip (IHAVE
	// to a quarter of its peers every heartbeat) during the vote, raft's
	// heartbeats queued behind it, and the validators lost their leader.
	DHTServers int
	// DHTServerEvery, when positive, also makes every k-th node a DHT
	// server.
	DHTServerEvery int
	// VotingPeriod is the governance voting period in seconds (default
	// 600: proposals pass early, once approval exceeds half the weight).
	VotingPeriod int64
	// Seed makes the topology reproducible (default 1).
	Seed uint64
	// Log receives every node's logs (nil: discard).
	Log *slog.Logger
	// Tune, if set, adjusts node i's configuration before it starts.
	Tune func(i int, c *node.Config)
}

// DefaultBitsPerSecond is a 20 Mbit/s link per node.
const DefaultBitsPerSecond = 20 * simlibp2p.OneMbps

func (c *Config) defaults() error {
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("simtest: need at least 2 nodes, got %d", c.Nodes)
	case c.Validators < 1 || c.Validators > c.Nodes:
		return fmt.Errorf("simtest: need 1 ≤ validators ≤ nodes, got %d of %d", c.Validators, c.Nodes)
	case c.Dir == "":
		return errors.New("simtest: no directory")
	case c.Nodes > 1<<16:
		return fmt.Errorf("simtest: %d nodes is more than the address plan holds", c.Nodes)
	}
	if c.Latency == nil {
		c.Latency = DefaultLatency
	}
	if c.BitsPerSecond == 0 {
		c.BitsPerSecond = DefaultBitsPerSecond
	}
	if c.Bootstrap == 0 {
		c.Bootstrap = 3
	}
	c.Bootstrap = min(c.Bootstrap, c.Nodes-1)
	if c.ConnLow == 0 {
		c.ConnLow = 4
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = 64
	}
	if c.DHTServers == 0 {
		c.DHTServers = c.Validators
	}
	c.DHTServers = min(c.DHTServers, c.Nodes-c.Validators)
	if c.VotingPeriod == 0 {
		c.VotingPeriod = 600
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Net is a running simulated network.
type Net struct {
	cfg     Config
	story   atomic.Pointer[recorder] // the running story's, for Progress
	sim     *simnet.Simnet           // nil with Streams
	mem     *memNet                  // nil without Streams
	store   *badger.Datastore
	genesis *genesis.Genesis
	// Nodes are the running nodes, in index order.
	Nodes []*node.Node
	// Addrs are the nodes' simulated listen addresses.
	Addrs []string
	ips   []net.IP
}

// Start builds the simulated network, a devnet genesis and every node, and
// starts them; it does not wait for the swarm to form (see WaitFormed). It
// must run inside a synctest bubble.
func Start(ctx context.Context, cfg Config) (_ *Net, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Net{cfg: cfg}
	defer func() {
		if err != nil {
			n.Close(context.Background())
		}
	}()

	// The address plan: node i listens on a simulated public IPv4 address,
	// and the router looks up both ends of each packet to apply the
	// pair's latency.
	index := addrIndex{}
	ips := make([]net.IP, cfg.Nodes)
	n.ips = ips
	for i := range ips {
		ips[i] = simnet.IntToPublicIPv4(i).To4()
		index[[4]byte(ips[i])] = i
		if cfg.Streams {
			n.Addrs = append(n.Addrs, fmt.Sprintf("/ip4/%s/tcp/8000", ips[i]))
		} else {
			n.Addrs = append(n.Addrs, fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ips[i]))
		}
	}
	if cfg.Streams {
		n.mem = newMemNet(cfg.Latency, cfg.BitsPerSecond, index)
	} else {
		n.sim = &simnet.Simnet{
			LatencyFunc: index.packetLatency(cfg.Latency),
			Logger:      cfg.Log.With("component", "simnet"),
		}
		n.sim.Start()
	}

	// One badger store for all nodes, a namespace each: a real store with
	// transactions, batches and prefix queries, without 1000 memtables.
	// Nothing outlives the process, so writes are not synced.
	opts := node.DatastoreOptions()
	opts.SyncWrites = false
	opts.GcInterval = 0
	opts.MaxTableSize = 16 << 20
	// A 1000-node story writes ~2 million ops into this one store; with
	// badger's defaults level 0 filled up, every write waited for a
	// compaction, and the compactors run on (virtual) timers: the store,
	// not the network, set the pace. With room for 64 level-0 tables the
	// compactions still took 14 % of a 1000-node vote's CPU, rewriting a
	// store that is 1000 small stores in reality, none of which would
	// compact during a story. So it never compacts: level 0 only grows
	// (a ~1 GB story is some 60 tables of 16 MiB), reads are a few
	// package blocks and the start-up queries, and nothing outlives the
	// process.
	opts.NumMemtables = 4
	opts.NumCompactors = 0
	opts.NumLevelZeroTablesStall = math.MaxInt32
	if n.store, err = badger.NewDatastore(filepath.Join(cfg.Dir, "shared-datastore"), &opts); err != nil {
		return nil, fmt.Errorf("simtest: shared datastore: %w", err)
	}

	keys, ids, err := genesis.NewDevnetKeys(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	n.genesis, err = genesis.Devnet("synapse-simtest", ids, cfg.Validators, cfg.VotingPeriod)
	if err != nil {
		return nil, err
	}
	genesisPath := filepath.Join(cfg.Dir, "genesis.json")
	if err := n.genesis.Write(genesisPath); err != nil {
		return nil, err
	}

	// Every node verifies every op's signature; in one process the same
	// bytes are verified a thousand times over. A shared cache of verified
	// signatures (exact op and signature) does it once.
	sigs := gossip.NewSignatureCache(1 << 16)

	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x5ca1e))
	link := simnet.NodeBiDiLinkSettings{
		Downlink: simnet.LinkSettings{BitsPerSecond: cfg.BitsPerSecond},
		Uplink:   simnet.LinkSettings{BitsPerSecond: cfg.BitsPerSecond},
	}
	for i := range keys {
		c, err := n.nodeConfig(i, keys[i], genesisPath, ids, rng)
		if err != nil {
			return nil, err
		}
		hostOpts := []p2p.Option{
			p2p.WithoutRelay(), p2p.WithoutMetrics(),
			// Identify's address discovery stalls synctest (x/simlibp2p);
			// the listen address is the public one.
			p2p.WithLibp2pOptions(libp2p.DisableIdentifyAddressDiscovery()),
		}
		if cfg.Streams {
			hostOpts = append(hostOpts, p2p.WithTransport(n.mem.transport(ips[i])))
		} else {
			hostOpts = append(hostOpts, p2p.WithoutTCP(), p2p.WithLibp2pOptions(simlibp2p.QUICSimnet(n.sim, link)))
		}
		nd, err := node.New(ctx, c,
			node.WithLogger(cfg.Log.With("node", i)),
			node.WithDatastore(namespace.Wrap(n.store, datastore.NewKey(fmt.Sprintf("/n%d", i)))),
			node.WithSignatureCache(sigs),
			node.WithHostOptions(hostOpts...))
		if err != nil {
			return nil, fmt.Errorf("simtest: node %d: %w", i, err)
		}
		n.Nodes = append(n.Nodes, nd)
	}
	for i, nd := range n.Nodes {
		if err := nd.Start(ctx); err != nil {
			return nil, fmt.Errorf("simtest: start node %d: %w", i, err)
		}
	}
	return n, nil
}

// nodeConfig writes node i's identity and config.
func (n *Net) nodeConfig(i int, key crypto.PrivKey, genesisPath string, ids []peer.ID, rng *mrand.Rand) (node.Config, error) {
	cfg := n.cfg
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("node%04d", i))
	if err := p2p.WriteIdentity(filepath.Join(dir, p2p.IdentityFile), key); err != nil {
		return node.Config{}, err
	}
	c := node.DefaultConfig(dir)
	c.Genesis = genesisPath // one file for all
	c.API.Addr = ""
	c.P2P.ListenAddrs = []string{n.Addrs[i]}
	c.P2P.MDNS = false
	// Every simulated address is public and there is no relay transport
	// (p2p.WithoutRelay): nothing for NAT traversal to do.
	c.P2P.NATPortMap = false
	c.P2P.AutoNAT = false
	c.P2P.RelayService.Enabled = false
	c.P2P.RelayClient.Enabled = false
	c.P2P.HolePunching = false
	c.P2P.ConnLow, c.P2P.ConnHigh = cfg.ConnLow, cfg.ConnHigh
	c.P2P.DHTMode = p2p.DHTModeClient
	if n.dhtServer(i) {
		c.P2P.DHTMode = p2p.DHTModeServer
		// A DHT server is every node's bootstrap and lookup peer: sized
		// like a real network's bootstrap nodes, it keeps them all. With
		// ConnHigh 64, a DHT server of 1000 nodes trimmed the hundreds
		// that dial it, they redialled, and the simulation spent its
		// time on handshakes while virtual time stood still.
		c.P2P.ConnHigh = max(c.P2P.ConnHigh, cfg.Nodes+16)
	}
	boot := n.pickBootstrap(rng, i)
	if i < cfg.Validators {
		// Validators know each other's addresses, as the operators of a
		// validator set do: bootstrap peers stay connected and protected
		// from trimming on both sides. Found through the DHT instead, a
		// validator of 1000 nodes — one of 7 DHT servers, trimming the
		// hundreds of nodes that keep dialling it — lost the others, and
		// raft had no leader after 2 minutes.
		for j := range cfg.Validators {
			if j != i && !slices.Contains(boot, j) {
				boot = append(boot, j)
			}
		}
	}
	for _, j := range boot {
		c.P2P.Bootstrap = append(c.P2P.Bootstrap, n.Addrs[j]+"/p2p/"+ids[j].String())
	}
	// A child process cannot run in a synctest bubble; in process, the
	// compiled module is shared through one cache.
	c.Upgrade.Isolation = upgrade.IsolationInProcess
	c.Upgrade.CompilationCacheDir = filepath.Join(cfg.Dir, "wasm-cache")
	if cfg.Tune != nil {
		cfg.Tune(i, &c)
	}
	if _, err := node.Init(c, genesisPath); err != nil {
		return node.Config{}, err
	}
	return c, nil
}

// dhtServer reports whether node i runs its DHT in server mode: each
// of the DHTServers nodes after the validators (every validator when
// there are no others) and, when set, every DHTServerEvery-th node.
func (n *Net) dhtServer(i int) bool {
	v := n.cfg.Validators
	switch {
	case n.cfg.DHTServers == 0:
		return i < v
	case i >= v && i < v+n.cfg.DHTServers:
		return true
	}
	return n.cfg.DHTServerEvery > 0 && i%n.cfg.DHTServerEvery == 0
}

// pickBootstrap picks node i's bootstrap peers: one DHT server, then
// random others, all distinct and not i.
func (n *Net) pickBootstrap(rng *mrand.Rand, i int) []int {
	seen := map[int]bool{i: true}
	var out []int
	for tries := 0; len(out) < n.cfg.Bootstrap; tries++ {
		j := rng.IntN(n.cfg.Nodes)
		if seen[j] || (len(out) == 0 && !n.dhtServer(j) && tries < 1000) {
			continue
		}
		seen[j] = true
		out = append(out, j)
	}
	return out
}

// Genesis is the network's genesis.
func (n *Net) Genesis() *genesis.Genesis { return n.genesis }

// WaitFormed waits (in virtual time) until every node has at least minPeers
// connected peers and the validators agree on a raft leader.
func (n *Net) WaitFormed(ctx context.Context, minPeers int) error {
	for {
		if n.formed(minPeers) {
			return nil
		}
		select {
		case <-ctx.Done():
			lonely := 0
			for _, nd := range n.Nodes {
				if len(nd.Host().Network().Peers()) < minPeers {
					lonely++
				}
			}
			var leaders []string
			for i := 0; i < n.cfg.Validators; i++ {
				leaders = append(leaders, n.Nodes[i].Raft().Leader().String())
			}
			return fmt.Errorf("simtest: network not formed (%d nodes with fewer than %d peers; validators follow %v): %w",
				lonely, minPeers, leaders, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Net) formed(minPeers int) bool {
	for _, nd := range n.Nodes {
		if len(nd.Host().Network().Peers()) < minPeers {
			return false
		}
	}
	return n.Leader() >= 0
}

// LinkBacklog is how far ahead of now node i's uplink and downlink are
// booked: how long a byte sent or arriving now waits for its link (zero
// without Config.Streams, or when the link is idle).
func (n *Net) LinkBacklog(i int) (up, down time.Duration) {
	if n.mem == nil || i < 0 || i >= len(n.Addrs) {
		return 0, 0
	}
	return n.mem.backlog(n.ips[i])
}

// Leader is the index of the validator all validators follow, or -1.
func (n *Net) Leader() int {
	var leader peer.ID
	for i := 0; i < n.cfg.Validators; i++ {
		l := n.Nodes[i].Raft().Leader()
		if l == "" || (leader != "" && l != leader) {
			return -1
		}
		leader = l
	}
	for i := 0; i < n.cfg.Validators; i++ {
		if n.Nodes[i].ID() == leader {
			return i
		}
	}
	return -1
}

// Close stops every node, the simulated network and the shared store. Safe
// to call twice.
func (n *Net) Close(ctx context.Context) error {
	var errs []error
	for i := len(n.Nodes) - 1; i >= 0; i-- {
		errs = append(errs, n.Nodes[i].Close(ctx))
	}
	n.Nodes = nil
	// go-libp2p-pubsub retries a subscription announcement from a
	// goroutine that sleeps up to 1 s before it looks at its context
	// (announceRetry); in a bubble, time stands still once the test's
	// function returns, so those goroutines must end before: wait them
	// out (virtual time, free).
	time.Sleep(1100 * time.Millisecond)
	if n.sim != nil {
		n.sim.Close()
		n.sim = nil
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
		n.store = nil
	}
	return errors.Join(errs...)
}
