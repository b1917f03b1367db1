package bitswap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// ErrNotHeld is returned by Provide for content the node does not hold
// completely.
var ErrNotHeld = errors.New("bitswap: package not held locally")

// Timing of announcements.
const (
	provideTimeout = time.Minute
	// provideRetry is how soon a failed announcement (typically: the DHT
	// has no peers yet) is tried again.
	provideRetry = 30 * time.Second
)

// Provide keeps the package rooted at c (it must be held completely) and
// announces it on the DHT now. With no Routing it only keeps it: connected
// peers can still fetch it by bitswap. It is re-announced every
// ReprovideInterval as long as the node runs.
func (s *Store) Provide(ctx context.Context, c cid.Cid) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	ok, err := s.complete(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotHeld, c)
	}
	if err := s.pins.add(ctx, c); err != nil {
		return err
	}
	if s.routing == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	if err := s.routing.Provide(pctx, c, true); err != nil {
		return fmt.Errorf("bitswap: announce %s: %w", c, err)
	}
	return nil
}

// keep records c as a kept package and queues its announcement, without
// waiting for the DHT.
func (s *Store) keep(ctx context.Context, c cid.Cid) error {
	if err := s.pins.add(ctx, c); err != nil {
		return err
	}
	if s.routing == nil {
		return nil
	}
	s.mu.Lock()
	s.queued[pinKey(c).String()] = c
	s.mu.Unlock()
	select {
	case s.provideNow <- struct{}{}:
	default:
	}
	return nil
}

func (s *Store) takeQueued() []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cid.Cid, 0, len(s.queued))
	for k, c := range s.queued {
		out = append(out, c)
		delete(s.queued, k)
	}
	return out
}

// reprovideLoop announces every kept root at start and every
// ReprovideInterval, newly kept roots as soon as they are queued, and
// retries failed announcements after provideRetry.
func (s *Store) reprovideLoop(ctx context.Context) {
	if s.routing == nil {
		return
	}
	full := time.NewTimer(0)
	defer full.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			roots, err := s.pins.list(ctx)
			if err != nil {
				s.log.Warn("reprovide: cannot list kept packages", "err", err)
			}
			s.announce(ctx, roots)
			full.Reset(s.cfg.ReprovideInterval)
		case <-s.provideNow:
			s.announce(ctx, s.takeQueued())
		case <-retry:
			retry = nil
			s.announce(ctx, s.takeQueued())
		}
		s.mu.Lock()
		failed := len(s.queued) > 0
		s.mu.Unlock()
		if failed && retry == nil {
			retry = time.After(provideRetry)
		}
	}
}

// announce provides each root; failures are queued for a retry.
func (s *Store) announce(ctx context.Context, roots []cid.Cid) {
	for _, c := range roots {
		if ctx.Err() != nil {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, provideTimeout)
		err := s.routing.Provide(pctx, c, true)
		cancel()
		if err != nil {
			s.log.Debug("announce failed, will retry", "cid", c, "err", err)
			s.mu.Lock()
			s.queued[pinKey(c).String()] = c
			s.mu.Unlock()
			continue
		}
		s.log.Debug("announced package", "cid", c)
	}
}
