package bitswap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Errors of Fetch.
var (
	// ErrTooLarge: the package is larger than the fetch's size cap (checked
	// against the size its root declares, and again while streaming).
	ErrTooLarge = errors.New("bitswap: package larger than the size cap")
	// ErrUnavailable: the root block could not be fetched before the
	// context ended (nobody provides it, or it was cancelled). It wraps the
	// context's error too.
	ErrUnavailable = errors.New("bitswap: package not available")
	// ErrNotAFile: the CID names a directory, symlink or something else
	// than a UnixFS file or raw block.
	ErrNotAFile = errors.New("bitswap: CID is not a file")
	// ErrSizeMismatch: the bytes of the DAG do not add up to the size its
	// root declares.
	ErrSizeMismatch = errors.New("bitswap: package size does not match its root")
)

// FetchOption adjusts one Fetch.
type FetchOption func(*fetchOptions)

type fetchOptions struct {
	maxSize  int64
	progress func(done, total int64)
}

// WithMaxSize caps the package size at n bytes instead of
// Config.MaxFetchBytes (n <= 0 keeps the configured cap).
func WithMaxSize(n int64) FetchOption {
	return func(o *fetchOptions) {
		if n > 0 {
			o.maxSize = n
		}
	}
}

// WithProgress calls f after every read that returned bytes, with the bytes
// delivered so far and the package size its root declares. f runs on the
// reader's goroutine and must be quick.
func WithProgress(f func(done, total int64)) FetchOption {
	return func(o *fetchOptions) { o.progress = f }
}

// Fetch streams the package rooted at c: from the local blockstore when it
// is held, otherwise by bitswap from connected peers and from providers
// found through the DHT. Fetch returns once the root block is there (or
// with ErrUnavailable when ctx ends first, ErrTooLarge when the root
// declares more than the cap, ErrNotAFile for a directory); the rest is
// fetched while it is read, with blocks prefetched ahead of the reader.
// ctx governs the whole stream. Every block is hash-checked by bitswap
// before it is stored, so a peer cannot substitute bytes. After the reader
// has returned io.EOF with every declared byte, the node keeps the package
// and announces it, so later fetchers can use this node as a provider.
// Close the reader to stop a fetch early.
func (s *Store) Fetch(ctx context.Context, c cid.Cid, opts ...FetchOption) (io.ReadCloser, error) {
	if !c.Defined() {
		return nil, fmt.Errorf("%w: undefined CID", ErrInvalidCID)
	}
	o := fetchOptions{maxSize: s.cfg.MaxFetchBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	r := &fetchReader{s: s, c: c, opts: o, cancel: cancel}
	// Closing the store ends every fetch.
	r.stop = context.AfterFunc(s.ctx, cancel)
	ses := merkledag.NewSession(fctx, s.dag)

	if s.routing != nil && !s.cfg.boxoDefaults {
		s.spawn(&r.wg, func() { s.connectProviders(fctx, c) })
	}
	root, err := ses.Get(fctx, c)
	if err != nil {
		r.Close()
		if ctx.Err() != nil || fctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, c, context.Cause(fctx))
		}
		return nil, fmt.Errorf("bitswap: fetch %s: %w", c, err)
	}
	total, err := fileSize(root)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("bitswap: fetch %s: %w", c, err)
	}
	if total > o.maxSize {
		r.Close()
		return nil, fmt.Errorf("%w: %s declares %d bytes, cap %d", ErrTooLarge, c, total, o.maxSize)
	}
	r.fctx, r.root, r.total = fctx, root, total
	// The first attempt keeps the session that found the root: it already
	// knows which peers have the package and asks them for blocks directly.
	if err := r.open(0, ses); err != nil {
		r.Close()
		return nil, err
	}
	if len(root.Links()) > 0 {
		s.spawn(&r.wg, r.watchdog)
	}
	return r, nil
}

// Stall handling. boxo asks a peer for a block once: a peer that answered
// DONT_HAVE (or timed out) while it was still fetching the package itself
// is asked again only when its queue rebroadcasts, every 30 s. When every
// peer answered too early, a fetch stops for up to 30 s. After stallReset
// without a byte the fetch resets the bitswap client's peer queues (every
// live want goes to every peer again; blocks in flight still arrive);
// after stallTimeout it also starts over with a new session from where it
// stopped (blocks already fetched are local).
var (
	stallReset   = 3 * time.Second
	stallTimeout = 15 * time.Second
)

// open starts a new attempt: a DAG reader positioned at offset on ses (a
// new bitswap session when nil) and, unless disabled, the prefetcher. The
// previous attempt, if any, is cancelled.
func (r *fetchReader) open(offset int64, ses ipld.NodeGetter) error {
	s := r.s
	actx, acancel := context.WithCancel(r.fctx)
	if ses == nil {
		ses = merkledag.NewSession(actx, s.dag)
	}
	dr, err := uio.NewDagReader(actx, r.root, ses)
	if err == nil && offset > 0 {
		_, err = dr.Seek(offset, io.SeekStart)
	}
	if err != nil {
		acancel()
		return fmt.Errorf("bitswap: fetch %s: %w", r.c, err)
	}
	r.mu.Lock()
	if r.attempt != nil {
		r.attempt()
	}
	r.attempt, r.stalled = acancel, false
	r.mu.Unlock()
	if r.dr != nil {
		r.dr.Close()
	}
	r.dr = dr
	if len(r.root.Links()) > 0 && !s.cfg.boxoDefaults {
		// Budget: the declared size plus slack for inner nodes.
		root, budget := r.root, r.opts.maxSize+prefetchSlack
		s.spawn(&r.wg, func() { prefetch(actx, ses, root, budget) })
	}
	return nil
}

// resetQueues replays a disconnect and a connect of every connected
// bitswap peer to the bitswap client. boxo drops the wants of a message it
// failed to send and only sends them again 30 s later, and a new session
// goes through the same per-peer queues; new queues send every live want
// at once. Only the client is told: the server's ledgers are untouched.
func (s *Store) resetQueues() {
	bs := s.bswap
	for _, p := range s.host.Network().Peers() {
		if proto, err := s.host.Peerstore().FirstSupportedProtocol(p, bitswapProtocols...); err != nil || proto == "" {
			continue
		}
		bs.Client.PeerDisconnected(p)
		if s.host.Network().Connectedness(p) == network.Connected {
			bs.Client.PeerConnected(p)
		}
	}
}

// bitswapProtocols are the protocol IDs boxo's network speaks.
var bitswapProtocols = []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers}

// watchdog cancels the current attempt when no byte arrived for
// stallTimeout; Read then opens a new one.
func (r *fetchReader) watchdog() {
	tick := time.NewTicker(stallReset / 6)
	defer tick.Stop()
	last, since := r.progress.Load(), time.Now()
	reset := false
	for {
		select {
		case <-r.fctx.Done():
			return
		case now := <-tick.C:
			if p := r.progress.Load(); p != last || p >= r.total {
				last, since, reset = p, now, false
				if p >= r.total {
					return
				}
				continue
			}
			if !reset && now.Sub(since) >= stallReset {
				r.s.log.Info("fetch idle, resetting bitswap peer queues", "cid", r.c, "done", last, "total", r.total)
				r.s.resetQueues()
				reset = true
			}
			if now.Sub(since) < stallTimeout {
				continue
			}
			r.s.log.Warn("fetch stalled, resetting bitswap queues and starting a new session", "cid", r.c, "done", last, "total", r.total)
			r.s.resetQueues()
			r.mu.Lock()
			r.stalled = true
			r.attempt()
			r.mu.Unlock()
			since, reset = now, false
		}
	}
}

// prefetchSlack is what the prefetcher may fetch beyond the size cap
// (internal nodes carry no file bytes).
const prefetchSlack = 4 << 20

// spawn runs f on a goroutine that Close waits for (and wg too, when not
// nil) unless the store is closed.
func (s *Store) spawn(wg *sync.WaitGroup, f func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.wg.Add(1)
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		defer s.wg.Done()
		if wg != nil {
			defer wg.Done()
		}
		f()
	}()
	return nil
}

// fileSize is the size a UnixFS file or raw block declares.
func fileSize(n ipld.Node) (int64, error) {
	switch n := n.(type) {
	case *merkledag.RawNode:
		return int64(len(n.RawData())), nil
	case *merkledag.ProtoNode:
		fs, err := unixfs.FSNodeFromBytes(n.Data())
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrNotAFile, err)
		}
		switch fs.Type() {
		case unixfs.TFile, unixfs.TRaw:
			return int64(fs.FileSize()), nil
		default:
			return 0, fmt.Errorf("%w: UnixFS type %s", ErrNotAFile, fs.Type())
		}
	default:
		return 0, fmt.Errorf("%w: codec %T", ErrNotAFile, n)
	}
}

// maxProviderDials bounds the providers a fetch dials from one DHT lookup.
const maxProviderDials = 3

// connectProviders looks the root up on the DHT right away and dials the
// providers found, instead of waiting for bitswap's provider search. A newly
// connected peer is sent the session's wants immediately.
func (s *Store) connectProviders(ctx context.Context, c cid.Cid) {
	for ai := range s.routing.FindProvidersAsync(ctx, c, maxProviderDials) {
		if ai.ID == s.host.ID() || s.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		if err := s.host.Connect(ctx, ai); err != nil {
			s.log.Debug("dial provider failed", "cid", c, "peer", ai.ID, "err", err)
		}
	}
}

// prefetch walks the DAG level by level, asking the session for every
// block of a level at once so that bitswap keeps peers busy while the
// reader consumes blocks in order. Fetched blocks land in the blockstore,
// where the reader finds them. It stops at ctx's end, on the first error
// (the reader reports errors) or after budget bytes.
func prefetch(ctx context.Context, ses ipld.NodeGetter, root ipld.Node, budget int64) {
	level := linkCIDs(root)
	var fetched int64
	for len(level) > 0 {
		inner := map[cid.Cid]ipld.Node{}
		for opt := range ses.GetMany(ctx, unique(level)) {
			if opt.Err != nil {
				return
			}
			fetched += int64(len(opt.Node.RawData()))
			if fetched > budget {
				return
			}
			if len(opt.Node.Links()) > 0 {
				inner[opt.Node.Cid()] = opt.Node
			}
		}
		if ctx.Err() != nil {
			return
		}
		var next []cid.Cid
		for _, c := range level {
			if n, ok := inner[c]; ok {
				next = append(next, linkCIDs(n)...)
			}
		}
		level = next
	}
}

func linkCIDs(n ipld.Node) []cid.Cid {
	out := make([]cid.Cid, 0, len(n.Links()))
	for _, l := range n.Links() {
		out = append(out, l.Cid)
	}
	return out
}

func unique(cs []cid.Cid) []cid.Cid {
	seen := make(map[cid.Cid]struct{}, len(cs))
	out := cs[:0:0]
	for _, c := range cs {
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	return out
}

// fetchReader streams a package and keeps it once it was read completely.
type fetchReader struct {
	s      *Store
	c      cid.Cid
	opts   fetchOptions
	fctx   context.Context
	cancel context.CancelFunc
	stop   func() bool
	wg     sync.WaitGroup
	root   ipld.Node

	mu      sync.Mutex
	attempt context.CancelFunc // cancels the current session and reader
	stalled bool               // the watchdog cancelled the attempt

	dr       uio.DagReader
	total    int64
	done     int64
	progress atomic.Int64 // done, for the watchdog
	err      error        // sticky
	once     sync.Once
}

func (r *fetchReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.dr.Read(p)
	if err != nil && err != io.EOF && r.fctx.Err() == nil {
		r.mu.Lock()
		stalled := r.stalled
		r.mu.Unlock()
		if stalled {
			if oerr := r.open(r.done+int64(n), nil); oerr != nil {
				err = oerr
			} else {
				err = nil
			}
		}
	}
	r.done += int64(n)
	r.progress.Store(r.done)
	if r.done > r.opts.maxSize {
		r.err = fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, r.c, r.opts.maxSize)
		return 0, r.err
	}
	if n > 0 && r.opts.progress != nil {
		r.opts.progress(r.done, r.total)
	}
	switch {
	case err == io.EOF:
		if r.done != r.total {
			r.err = fmt.Errorf("%w: %s: read %d bytes, root declares %d", ErrSizeMismatch, r.c, r.done, r.total)
			return n, r.err
		}
		r.err = io.EOF
		if kerr := r.s.keep(r.s.ctx, r.c); kerr != nil {
			r.s.log.Warn("cannot keep fetched package", "cid", r.c, "err", kerr)
		}
	case err != nil:
		r.err = fmt.Errorf("bitswap: fetch %s: %w", r.c, err)
	}
	return n, r.err
}

// Close stops the fetch and waits for its goroutines. It is safe to call
// twice.
func (r *fetchReader) Close() error {
	r.once.Do(func() {
		r.cancel()
		r.mu.Lock()
		if r.attempt != nil {
			r.attempt()
		}
		r.mu.Unlock()
		if r.stop != nil {
			r.stop()
		}
		r.wg.Wait()
		if r.dr != nil {
			r.dr.Close()
		}
	})
	return nil
}
