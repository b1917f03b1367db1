package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// A waiter whose client goes away leaves the queue, and its place is free
// for the next one; slots come back on release.
func TestLimiterQueue(t *testing.T) {
	l := newLimiter(1, 1, time.Minute)
	rel, err := l.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := l.acquire(ctx)
		got <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "one waiter", func() bool { _, w := l.load(); return w == 1 })
	if _, err := l.acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("queue full: err = %v", err)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: err = %v", err)
	}
	if r, w := l.load(); r != 1 || w != 0 {
		t.Fatalf("after cancel: %d running, %d waiting", r, w)
	}
	// The queue has room again: a waiter gets the slot when it is released.
	go func() {
		rel2, err := l.acquire(context.Background())
		if err == nil {
			rel2()
		}
		got <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "one waiter", func() bool { _, w := l.load(); return w == 1 })
	rel()
	if err := <-got; err != nil {
		t.Fatalf("waiter after release: %v", err)
	}
	if r, w := l.load(); r != 0 || w != 0 {
		t.Fatalf("at rest: %d running, %d waiting", r, w)
	}
}

// A queue of 0 refuses at once when every slot is taken.
func TestLimiterNoQueue(t *testing.T) {
	l := newLimiter(2, 0, time.Minute)
	a, _ := l.acquire(context.Background())
	b, _ := l.acquire(context.Background())
	if _, err := l.acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("third: err = %v", err)
	}
	a()
	c, err := l.acquire(context.Background())
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	b()
	c()
}
