// Package node wires a synapse-p2p node together: it reads the config,
// loads the identity and genesis, opens the one badger datastore, builds
// every component, starts them in order and closes them in reverse. It is
// the only package that knows all components.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/ipfs/go-datastore"
	badger "github.com/ipfs/go-ds-badger"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
)

// DatastoreDir is the badger datastore inside a data directory.
const DatastoreDir = "datastore"

// Node is one synapse-p2p node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	key     crypto.PrivKey
	genesis *genesis.Genesis
	netID   string

	wrapRaft func(peer.ID, net.Conn) net.Conn
	sigs     *gossip.SignatureCache // shared with other nodes of the process; nil in a real node

	ds   datastore.Batching
	host *p2p.Host
	api  *httpapi.Server
	components

	// events feeds GET /events (node/events.go); fetches tracks bitswap
	// downloads for GET /fetches (node/fetches.go).
	events  *eventHub
	fetches *fetchTracker

	// closers run in reverse order of registration.
	closers []func(context.Context) error
	closer  lifecycle.Once

	mu      sync.Mutex
	started bool
	closed  bool
}

// Option adjusts how New builds a node.
type Option func(*options)

type options struct {
	log      *slog.Logger
	wrapRaft func(peer.ID, net.Conn) net.Conn
	host     []p2p.Option
	ds       datastore.Batching
	sigs     *gossip.SignatureCache
}

// WithLogger sets the node's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRaftConnWrapper wraps the node's outbound raft connections
// (raftnet.Deps.WrapConn): traffic shaping, metrics, or a test's byzantine
// validator rewriting its own raft traffic.
func WithRaftConnWrapper(f func(remote peer.ID, c net.Conn) net.Conn) Option {
	return func(o *options) { o.wrapRaft = f }
}

// WithHostOptions passes programmatic options to the node's libp2p host
// (p2p.New): extra libp2p options such as a simulated network's transport
// (p2p.WithLibp2pOptions), and switches for what such a host cannot have
// (p2p.WithoutTCP, p2p.WithoutRelay, p2p.WithoutMetrics).
func WithHostOptions(opts ...p2p.Option) Option {
	return func(o *options) { o.host = append(o.host, opts...) }
}

// WithDatastore makes the node use ds instead of opening its own badger
// datastore in <data>/datastore; the node does not close it. Many nodes in
// one process (the simulated network) each get a namespace of one shared
// store this way. ds must keep what it was given across the node's
// restarts if the node is restarted.
func WithDatastore(ds datastore.Batching) Option {
	return func(o *options) { o.ds = ds }
}

// WithSignatureCache shares c among the nodes of one process (a simulated
// network): each op's signature is verified once there instead of once per
// node (gossip.SignatureCache).
func WithSignatureCache(c *gossip.SignatureCache) Option {
	return func(o *options) { o.sigs = c }
}

// New loads the identity and genesis of the initialised data directory in
// cfg, opens the datastore and builds every component. Nothing talks to the
// network until Start. On error, everything opened so far is closed.
func New(ctx context.Context, cfg Config, opts ...Option) (_ *Node, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: o.log, wrapRaft: o.wrapRaft, sigs: o.sigs, events: newEventHub()}
	n.fetches = newFetchTracker(func() { n.notify(httpapi.EventFetch, "", 0) })
	defer func() {
		if err != nil {
			n.closeAll(context.Background())
		}
	}()
	// Registered first, so it runs last: every producer has stopped.
	n.closers = append(n.closers, func(context.Context) error { n.events.close(); return nil })

	n.key, err = p2p.LoadIdentity(filepath.Join(cfg.DataDir, p2p.IdentityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (run: synapse-p2p init --data %s)", ErrNotInitialised, cfg.DataDir, p2p.IdentityFile, cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	n.genesis, err = genesis.Load(cfg.GenesisPath())
	if err != nil {
		return nil, err
	}
	n.netID, err = n.genesis.NetID()
	if err != nil {
		return nil, err
	}
	n.log = n.log.With("net", n.netID)
	if cfg.Raft.LANTimeouts() {
		d := raftnet.DefaultConfig()
		n.log.Warn("raft timeouts are the LAN values of config files written before 30 Nov 2026; validators lose their leader under load with them",
			"heartbeat_timeout", cfg.Raft.HeartbeatTimeout, "election_timeout", cfg.Raft.ElectionTimeout, "leader_lease_timeout", cfg.Raft.LeaderLeaseTimeout,
			"suggested", fmt.Sprintf(`"raft": {"heartbeat_timeout": "%s", "election_timeout": "%s", "leader_lease_timeout": "%s"}`, d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout))
	}

	if o.ds != nil {
		n.ds = o.ds
	} else {
		dsOpts := DatastoreOptions()
		bds, err := badger.NewDatastore(filepath.Join(cfg.DataDir, DatastoreDir), &dsOpts)
		if err != nil {
			return nil, fmt.Errorf("open datastore (is another synapse-p2p using %s?): %w", cfg.DataDir, err)
		}
		n.ds = bds
		n.closers = append(n.closers, func(ctx context.Context) error {
			// Past the deadline a component may still be stopping and
			// write; badger recovers an unclosed datastore on the next
			// start.
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("node: datastore left open, components may still be stopping: %w", err)
			}
			return bds.Close()
		})
	}

	n.host, err = p2p.New(ctx, cfg.P2P, n.key, n.netID, n.log.With("component", "p2p"), n.hostOptions(o.host)...)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.host.Close)

	if err := n.buildComponents(ctx); err != nil {
		return nil, err
	}

	if cfg.API.Addr != "" {
		gov, upg, pkgs := n.APIBackends()
		n.api, err = httpapi.New(cfg.API, httpapi.Deps{
			Node: nodeAPI{n}, Governance: gov, Upgrades: upg, Packages: pkgs, Metrics: n.metricsHandler(),
			Events: n.events.subscribe, Fetches: n.fetchesAPI,
		}, n.log.With("component", "api"))
		if err != nil {
			return nil, err
		}
		n.closers = append(n.closers, n.api.Close)
	}
	return n, nil
}

// Start starts the components in order: host and discovery, raft and the
// executor loop, then the API.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("node: closed")
	}
	if n.started {
		return errors.New("node: already started")
	}
	n.started = true
	if err := n.host.Start(); err != nil {
		return err
	}
	if err := n.startComponents(ctx); err != nil {
		return err
	}
	fctx, stopForwarder := context.WithCancel(context.Background())
	forwarderDone := make(chan struct{})
	go func() {
		defer close(forwarderDone)
		n.runEventForwarder(fctx)
	}()
	n.closers = append(n.closers, func(context.Context) error {
		stopForwarder()
		<-forwarderDone
		return nil
	})
	if n.api != nil {
		if err := n.api.Start(); err != nil {
			return err
		}
	}
	n.log.Info("node started", "peer", n.host.ID(), "addrs", n.host.Addrs())
	return nil
}

// Close stops every component in reverse order of construction; each one
// waits for its goroutines until ctx is done. Every call returns the first
// call's result.
func (n *Node) Close(ctx context.Context) error {
	return n.closer.Do(func() error {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		return n.closeAll(ctx)
	})
}

func (n *Node) closeAll(ctx context.Context) error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	return errors.Join(errs...)
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// NetID is the network ID derived from the genesis.
func (n *Node) NetID() string { return n.netID }

// Genesis is the network's genesis.
func (n *Node) Genesis() *genesis.Genesis { return n.genesis }

// Host is the node's libp2p host.
func (n *Node) Host() *p2p.Host { return n.host }

// Addrs are the node's listen addresses with the /p2p/ suffix.
func (n *Node) Addrs() []ma.Multiaddr { return n.host.P2PAddrs() }

// APIAddr is the address the REST API listens on, or "" when it is off.
func (n *Node) APIAddr() string {
	if n.api == nil {
		return ""
	}
	return n.api.Addr()
}

// Peers are the connected peers, directly or only through a relay, sorted
// by ID; Addrs are the peer's side of each connection.
func (n *Node) Peers() []peer.AddrInfo {
	pcs := n.host.PeerConns()
	out := make([]peer.AddrInfo, 0, len(pcs))
	for _, pc := range pcs {
		ai := peer.AddrInfo{ID: pc.ID}
		for _, c := range pc.Conns {
			ai.Addrs = append(ai.Addrs, c.Addr)
		}
		out = append(out, ai)
	}
	return out
}

// hostOptions are the options node passes to p2p.New: extra (from
// WithHostOptions) and, when the node serves no /metrics, libp2p's own
// metrics off (nobody could read them; with many nodes in one process they
// would all report into one registry).
func (n *Node) hostOptions(extra []p2p.Option) []p2p.Option {
	var opts []p2p.Option
	if n.cfg.API.Addr == "" {
		opts = append(opts, p2p.WithoutMetrics())
	}
	return append(opts, extra...)
}
