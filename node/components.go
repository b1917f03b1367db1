package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// components are the parts of a node beyond host, datastore and API, in
// start order: executor state, content store, gossip, raft, executor loop.
type components struct {
	packages *bitswap.Store
	upgrades *upgrade.Manager
	gossip   *gossip.Service
	raft     *raftnet.Service

	// rules are the governance rules of the current network state; they are
	// re-read after every executed entry, so an upgrade can change them.
	rules atomic.Pointer[genesis.Rules]

	// fetched records when a package was last fetched completely (by CID),
	// for the simnet timeline; imported maps the sha256 of an http(s)
	// package this node verified to the CID it serves it under.
	fetchMu  sync.Mutex
	fetched  map[string]time.Time
	imported map[string]string

	// rulesHist holds the rules in force per execution-log seq.
	rulesHist *rulesHistory

	// prepCtx and prepWG own the validators' background package
	// preparation (node/raftgov.go).
	prepCtx    context.Context
	prepCancel context.CancelFunc
	prepWG     sync.WaitGroup

	metrics *metrics
	exec    execState

	kick       chan struct{}
	execCancel context.CancelFunc
	execDone   chan struct{}
}

// buildComponents constructs content store, executor, gossip and raft on
// the already open datastore and host. Closers are registered in order.
func (n *Node) buildComponents(ctx context.Context) error {
	n.fetched = map[string]time.Time{}
	n.imported = map[string]string{}
	n.kick = make(chan struct{}, 1)
	n.prepCtx, n.prepCancel = context.WithCancel(context.Background())
	log := n.log

	var err error
	ucfg := n.cfg.Upgrade
	ucfg.DataDir = n.cfg.DataDir
	n.upgrades, err = upgrade.New(ctx, ucfg, upgrade.Deps{
		IPFSFetch:  n.fetchIPFS,
		OnVerified: n.importVerified,
		Logger:     log, // the component adds its own "component" attribute
	})
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	n.closers = append(n.closers, n.upgrades.Close)
	state, err := n.genesis.InitialState()
	if err != nil {
		return err
	}
	if err := n.upgrades.InitState(n.genesis.Version, state); err != nil {
		return fmt.Errorf("upgrade: install genesis state: %w", err)
	}
	if err := n.refreshRules(); err != nil {
		return err
	}
	if n.rulesHist, err = loadRulesHistory(ctx, n.ds); err != nil {
		return err
	}
	if err := n.recordRules(ctx); err != nil {
		return err
	}

	// The content store is built once the rules are known: a validator
	// serves with fewer workers and a rate cap (bitswap.Config).
	bcfg := n.cfg.Bitswap
	if n.isValidator() {
		bcfg.ServeWorkers, bcfg.ServeRate = bcfg.ValidatorServeWorkers, bcfg.ValidatorServeRate
	}
	// Dialer (p2p/dial.go): its Connect dials again after a TCP
	// simultaneous open and once through the dial backoff such a clash
	// leaves, which a fetcher dialling a provider that is dialling it at
	// that moment (announcing on the DHT) runs into.
	n.packages, err = bitswap.New(ctx, bcfg, bitswap.Deps{
		Host:      n.host.Dialer(),
		Routing:   n.host.DHT,
		Datastore: n.ds,
		Logger:    log.With("component", "bitswap"),
	})
	if err != nil {
		return fmt.Errorf("bitswap: %w", err)
	}
	n.closers = append(n.closers, n.packages.Close)

	// Sync and raft may run over relayed (limited) connections, so nodes
	// that reach each other only through a relay still exchange ops and
	// validators still form raft; bitswap waits for a direct connection
	// (p2p.AllowLimited, docs/nat.md).
	n.gossip, err = gossip.New(ctx, n.cfg.Gossip, gossip.Deps{
		Host:       p2p.AllowLimited(n.host.Host, log.With("component", "p2p"), gossip.SyncProtocol(n.netID)),
		Key:        n.key,
		Datastore:  n.ds,
		NetID:      n.netID,
		Rules:      n.Rules,
		RulesFor:   n.rulesHist.get,
		Repair:     n.cfg.Repair,
		Logger:     log,
		Signatures: n.sigs,
	})
	if errors.Is(err, gossip.ErrCorruptStore) {
		return err // it names the records and the way out
	}
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.closers = append(n.closers, n.gossip.Close)

	genesisVals := make([]peer.ID, 0, len(n.genesis.Validators))
	for _, v := range n.genesis.Validators {
		id, err := peer.Decode(v)
		if err != nil {
			return fmt.Errorf("genesis validator %q: %w", v, err)
		}
		genesisVals = append(genesisVals, id)
	}
	rcfg := n.cfg.Raft
	rcfg.Dir = filepath.Join(n.cfg.DataDir, "raft")
	rcfg.NetworkID = n.netID
	if err := os.MkdirAll(filepath.Join(rcfg.Dir, "wal"), 0o700); err != nil {
		return err
	}
	n.raft, err = raftnet.New(ctx, rcfg, raftnet.Deps{
		Host:              p2p.AllowLimited(n.host.Host, log.With("component", "p2p"), raftnet.ProtocolID(n.netID)),
		Governance:        newRaftGovernance(n),
		Validators:        func() []peer.ID { return n.Rules().Validators },
		GenesisValidators: genesisVals,
		Routing:           n.host.DHT,
		Logger:            log,
		WrapConn:          n.wrapRaft,
	})
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	n.closers = append(n.closers, n.raft.Close)
	n.newMetrics()
	return nil
}

// startComponents starts raft, the executor loop and the package
// prefetcher; gossip and bitswap run
// from construction.
func (n *Node) startComponents(ctx context.Context) error {
	if err := n.raft.Start(ctx); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	ectx, cancel := context.WithCancel(context.Background())
	n.execCancel = cancel
	n.execDone = make(chan struct{})
	prefetchDone := make(chan struct{})
	go n.runExecutor(ectx)
	go func() {
		defer close(prefetchDone)
		n.runPrefetch(ectx)
	}()
	// The executor and prefetch loops stop before the components they use
	// close.
	n.closers = append(n.closers, func(ctx context.Context) error {
		cancel()
		n.prepCancel()
		return lifecycle.Wait(ctx, "executor", func() {
			<-n.execDone
			<-prefetchDone
			n.prepWG.Wait()
		})
	})
	return nil
}

// Rules are the governance rules of the node's current network state.
func (n *Node) Rules() genesis.Rules { return *n.rules.Load() }

// isValidator reports whether this node is a validator under the current
// rules.
func (n *Node) isValidator() bool { return slices.Contains(n.Rules().Validators, n.host.ID()) }

// applyServeRate caps this node's bitswap serving at the validator rate
// while it is a validator, at the ordinary rate otherwise.
func (n *Node) applyServeRate() {
	r := n.cfg.Bitswap.ServeRate
	if n.isValidator() {
		r = n.cfg.Bitswap.ValidatorServeRate
	}
	if r != n.packages.ServeRate() {
		n.log.Info("bitswap serve rate", "bytes_per_second", r, "validator", n.isValidator())
		n.packages.SetServeRate(r)
	}
}

// recordRules records the current rules as those in force for the entry
// after the last executed one (and genesis rules for entry 1), so finality
// of that entry counts the right validators.
func (n *Node) recordRules(ctx context.Context) error {
	return n.rulesHist.set(ctx, n.upgrades.LastExecutedSeq()+1, n.Rules())
}

func (n *Node) refreshRules() error {
	_, state, _ := n.upgrades.State()
	r, err := genesis.RulesFromState(state)
	if err != nil {
		return fmt.Errorf("node: current network state has unreadable rules: %w", err)
	}
	n.rules.Store(&r)
	return nil
}

// fetchIPFS adapts the content store to the executor's ipfs:// fetcher,
// tracks the download's progress (GET /fetches) and records when a fetch
// completed.
func (n *Node) fetchIPFS(ctx context.Context, s string, maxSize int64) (io.ReadCloser, error) {
	c, err := bitswap.ParseCID(s)
	if err != nil {
		return nil, err
	}
	track := n.fetches.start("ipfs://" + c.String())
	rc, err := n.packages.Fetch(ctx, c, bitswap.WithMaxSize(maxSize), bitswap.WithProgress(track.progress))
	if err != nil {
		track.finish(false, err)
		return nil, err
	}
	return &fetchRecorder{ReadCloser: rc, track: track, done: func() {
		n.fetchMu.Lock()
		n.fetched[c.String()] = time.Now()
		n.fetchMu.Unlock()
	}}, nil
}

// importVerified puts a package the executor verified into the content
// store, so this node serves it over bitswap under its CID even if the
// package's URL breaks; validators announce that CID in their attest and
// ratify ops, and executors fetch from it when the URL fails.
func (n *Node) importVerified(ctx context.Context, sha256hex, path string) {
	f, err := os.Open(path)
	if err != nil {
		n.log.Warn("import verified package", "sha256", sha256hex, "err", err)
		return
	}
	defer f.Close()
	res, err := n.packages.Add(ctx, f)
	if err != nil {
		n.log.Warn("import verified package", "sha256", sha256hex, "err", err)
		return
	}
	if res.SHA256 != sha256hex {
		n.log.Error("imported package changed on disk", "want", sha256hex, "got", res.SHA256)
		return
	}
	n.fetchMu.Lock()
	n.imported["sha256:"+sha256hex] = res.CID.String()
	n.fetchMu.Unlock()
}

// FetchedAt is when this node last completed fetching the package with the
// given CID (zero if never).
func (n *Node) FetchedAt(cid string) time.Time {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	return n.fetched[cid]
}

type fetchRecorder struct {
	io.ReadCloser
	once  sync.Once
	done  func()
	track *trackedFetch
}

func (f *fetchRecorder) Read(p []byte) (int, error) {
	k, err := f.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		f.once.Do(f.done)
		f.track.finish(true, nil)
	case err != nil:
		f.track.finish(false, err)
	}
	return k, err
}

// Close ends the download; one closed before its end counts as stopped.
func (f *fetchRecorder) Close() error {
	f.track.finish(false, nil)
	return f.ReadCloser.Close()
}

// Packages is the node's content store.
func (n *Node) Packages() *bitswap.Store { return n.packages }

// Upgrades is the node's executor state.
func (n *Node) Upgrades() *upgrade.Manager { return n.upgrades }

// Gossip is the node's governance op set.
func (n *Node) Gossip() *gossip.Service { return n.gossip }

// Raft is the node's validator raft (idle on non-validators).
func (n *Node) Raft() *raftnet.Service { return n.raft }
