// Package lifecycletest checks that a component follows the Close rule of
// package lifecycle.
package lifecycletest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Closer is a component under test.
type Closer interface {
	Close(ctx context.Context) error
}

// Check opens two components with open and checks the Close rule:
//   - Close, again and from several goroutines at once, returns nil each
//     time once the first call succeeded;
//   - while hold keeps one of the component's goroutines running (until the
//     release it returns is called), a Close with a cancelled ctx returns
//     promptly an error wrapping context.Canceled, and every later call,
//     concurrent or not, returns that same error.
func Check[T Closer](t *testing.T, open func(t *testing.T) T, hold func(t *testing.T, c T) (release func())) {
	t.Helper()
	t.Run("twice and concurrently", func(t *testing.T) {
		c := open(t)
		closeAll(t, c, nil)
		if err := c.Close(context.Background()); err != nil {
			t.Fatalf("Close after Close = %v, want nil", err)
		}
	})
	t.Run("cancelled ctx", func(t *testing.T) {
		c := open(t)
		release := hold(t, c)
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- c.Close(ctx) }()
		var first error
		select {
		case first = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close with a cancelled ctx did not return while a goroutine was held")
		}
		if !errors.Is(first, context.Canceled) {
			t.Fatalf("Close(cancelled) = %v, want an error wrapping context.Canceled", first)
		}
		closeAll(t, c, first)
	})
}

// closeAll calls Close from four goroutines and wants want from each.
func closeAll(t *testing.T, c Closer, want error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Close(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != want {
			t.Fatalf("concurrent Close %d = %v, want %v", i, err, want)
		}
	}
}
