package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limiter bounds an expensive kind of request: at most cap(slots) run at
// once, at most maxWaiting wait for a slot, and none waits longer than
// wait. Waiters get slots in arrival order (blocked channel senders are
// served first in, first out).
type limiter struct {
	slots      chan struct{}
	wait       time.Duration
	maxWaiting int

	mu      sync.Mutex
	waiting int
}

func newLimiter(running, waiting int, wait time.Duration) *limiter {
	return &limiter{slots: make(chan struct{}, running), maxWaiting: waiting, wait: wait}
}

// acquire takes a slot, waiting in the queue when every slot is taken. It
// returns the func that gives the slot back, or an error wrapping ErrBusy
// (queue full, or no slot within the wait), or ctx's error.
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	l.mu.Lock()
	if l.waiting >= l.maxWaiting {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %d dry runs are running and %d are waiting; try again later", ErrBusy, cap(l.slots), l.maxWaiting)
	}
	l.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: no dry-run slot became free within %s; try again later", ErrBusy, l.wait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

// load is how many hold a slot and how many wait (for tests and logs).
func (l *limiter) load() (running, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.slots), l.waiting
}
