// Package bitswap distributes upgrade packages between nodes without an
// IPFS daemon: a boxo blockstore on the node's badger datastore (namespace
// /blocks), boxo bitswap (client and server, standard IPFS protocols) on the
// node's libp2p host, UnixFS import with Kubo's `ipfs add` defaults, DHT
// providing of the package roots the node keeps, and Fetch, which streams a
// package with progress and a size cap.
package bitswap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	bsbitswap "github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Deps are what the store needs from the node.
type Deps struct {
	// Host is the node's libp2p host; bitswap registers its standard
	// protocols (/ipfs/bitswap/1.2.0 and older) on it.
	Host host.Host
	// Routing is the node's DHT, used to announce kept packages and to find
	// providers. It may be nil: then only connected peers are asked and
	// nothing is announced.
	Routing routing.ContentRouting
	// Datastore is the node's shared datastore. The store owns the
	// namespaces /blocks (blocks) and /bitswap (kept package roots). It is
	// not closed by Close.
	Datastore datastore.Batching
	// Logger may be nil.
	Logger *slog.Logger
}

// Store is a node's content store: blocks on disk, bitswap on the network.
type Store struct {
	cfg     Config
	host    host.Host
	routing routing.ContentRouting
	log     *slog.Logger

	bstore blockstore.Blockstore
	bswap  *bsbitswap.Bitswap
	bserv  blockservice.BlockService
	// dag fetches through bitswap; local reads only the blockstore.
	dag   ipld.DAGService
	local ipld.DAGService
	pins  *pinSet

	provideNow chan struct{}
	serve      *serveLimiter

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closer lifecycle.Once
	mu     sync.Mutex
	closed bool
	queued map[string]cid.Cid // roots waiting for their first announcement, keyed by pin key
}

// New builds the store and starts bitswap on deps.Host and the reprovider.
// ctx only bounds construction; the store runs until Close.
func New(ctx context.Context, cfg Config, deps Deps) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Host == nil {
		return nil, fmt.Errorf("%w: no host", ErrInvalidConfig)
	}
	if deps.Datastore == nil {
		return nil, fmt.Errorf("%w: no datastore", ErrInvalidConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cfg:        cfg,
		host:       deps.Host,
		routing:    deps.Routing,
		log:        log,
		pins:       newPinSet(deps.Datastore),
		provideNow: make(chan struct{}, 1),
		ctx:        sctx,
		cancel:     cancel,
		queued:     map[string]cid.Cid{},
	}
	// NewBlockstore puts every block under /blocks/<multihash>.
	s.bstore = &verifyingBlockstore{Blockstore: blockstore.NewBlockstore(deps.Datastore), log: log}
	// Bitswap sends blocks on streams it opens itself; they write through
	// the serve limiter (serve.go).
	s.serve = newServeLimiter(sctx, cfg.ServeRate)
	net := bsnet.NewFromIpfsHost(limitedHost{Host: deps.Host, lim: s.serve})
	guard := &blockGuard{s: s}
	opts := []bsbitswap.Option{
		bsbitswap.ProviderSearchDelay(cfg.ProviderSearchDelay),
		bsbitswap.WithTracer(guard),
		// boxo spaces messages to one peer by (message queues in this
		// process) × 125 µs, at least 20 ms. The count is global to the
		// process, so when many nodes share one (simnet, tests) the spacing
		// grows with the square of the swarm: 31 nodes wait 116 ms between
		// messages. 1 µs per queue keeps the 20 ms floor that a real node
		// with ≤ 160 peers gets anyway.
		bsbitswap.WithClientOption(client.WithPerPeerSendDelay(time.Microsecond)),
	}
	if !cfg.boxoDefaults {
		// Serving workers sized for a governance node (boxo's 8 + 8 + 128
		// goroutines per node are sized for a gateway).
		opts = append(opts,
			bsbitswap.TaskWorkerCount(cfg.ServeWorkers),
			bsbitswap.EngineTaskWorkerCount(cfg.ServeWorkers),
			bsbitswap.EngineBlockstoreWorkerCount(2*cfg.ServeWorkers),
		)
		// Answer a want-have for a small block (a UnixFS root or inner
		// node, at most ~8 KiB) with the block itself: a fetch then gets its
		// root in one round trip instead of two, and saves the 20 ms boxo
		// waits between two messages to the same peer. Leaves (256 KiB)
		// are still announced with HAVE, so broadcasts do not pull
		// duplicate leaves from every peer.
		opts = append(opts, bsbitswap.WithWantHaveReplaceSize(wantHaveReplaceSize))
	}
	// A nil interface, not a typed nil, when there is no routing.
	if deps.Routing != nil {
		s.bswap = bsbitswap.New(sctx, net, deps.Routing, s.bstore, opts...)
	} else {
		s.bswap = bsbitswap.New(sctx, net, nil, s.bstore, opts...)
	}
	guard.bswap.Store(s.bswap)
	s.bserv = blockservice.New(s.bstore, s.bswap)
	s.dag = merkledag.NewDAGService(s.bserv)
	s.local = merkledag.NewDAGService(blockservice.New(s.bstore, nil))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reprovideLoop(sctx)
	}()
	return s, nil
}

// wantHaveReplaceSize: see New and docs/benchmarks.md (bitswap).
const wantHaveReplaceSize = 16 << 10

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("bitswap: store closed")

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close stops the reprovider and bitswap, waiting for the reprovider until
// ctx is done. Fetch readers still open fail from then on. The datastore
// stays open (the node owns it). Every call returns the first call's
// result.
func (s *Store) Close(ctx context.Context) error {
	return s.closer.Do(func() error {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		err := lifecycle.Wait(ctx, "bitswap reprovider", s.wg.Wait)
		return errors.Join(err, s.bserv.Close()) // closes bitswap and its network
	})
}
