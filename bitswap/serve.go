package bitswap

import (
	"context"
	"math"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// serveLimiter caps the bytes per second bitswap writes to its outbound
// streams — the messages that carry blocks to other nodes (wants and
// HAVEs are a few bytes). A validator serving a popular package otherwise
// fills its uplink and its CPU with blocks while its raft heartbeats and
// duties wait behind them (docs/content.md, docs/raft.md).
type serveLimiter struct {
	lim *rate.Limiter
	ctx context.Context // the store's: Close ends every wait
}

// serveBurst is the most bytes one write may take at once; larger writes
// are split. A 256 KiB block plus its message framing fits in one.
const serveBurst = 512 << 10

func newServeLimiter(ctx context.Context, bytesPerSecond int64) *serveLimiter {
	l := &serveLimiter{lim: rate.NewLimiter(rate.Inf, serveBurst), ctx: ctx}
	l.set(bytesPerSecond)
	return l
}

// set changes the rate; 0 (or less) means no limit.
func (l *serveLimiter) set(bytesPerSecond int64) {
	if bytesPerSecond <= 0 {
		l.lim.SetLimit(rate.Inf)
		return
	}
	l.lim.SetLimit(rate.Limit(bytesPerSecond))
}

func (l *serveLimiter) limit() int64 {
	r := l.lim.Limit()
	if r == rate.Inf || r > math.MaxInt64 {
		return 0
	}
	return int64(r)
}

// wait blocks until n bytes may be written (n ≤ serveBurst).
func (l *serveLimiter) wait(n int) error {
	if l.lim.Limit() == rate.Inf {
		return nil
	}
	return l.lim.WaitN(l.ctx, n)
}

// limitedHost is the host bitswap's network layer sees: streams it opens
// write through the limiter. Everything else is the node's host.
type limitedHost struct {
	host.Host
	lim *serveLimiter
}

func (h limitedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return limitedStream{Stream: s, lim: h.lim}, nil
}

type limitedStream struct {
	network.Stream
	lim *serveLimiter
}

func (s limitedStream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), serveBurst)
		if err := s.lim.wait(k); err != nil {
			return written, err
		}
		w, err := s.Stream.Write(p[:k])
		written += w
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// SetServeRate caps the bytes per second this node's bitswap sends to
// other nodes (0: no cap). node/ sets Config.ValidatorServeRate while the
// node is a validator and Config.ServeRate otherwise; it takes effect for
// the next block sent.
func (s *Store) SetServeRate(bytesPerSecond int64) { s.serve.set(bytesPerSecond) }

// ServeRate is the current cap set by SetServeRate (0: none).
func (s *Store) ServeRate() int64 { return s.serve.limit() }
