package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOnceRunsCloseOnceAndKeepsItsError(t *testing.T) {
	var o Once
	var calls atomic.Int32
	boom := errors.New("boom")
	closeFn := func() error { calls.Add(1); return boom }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := o.Do(closeFn); !errors.Is(err, boom) {
				t.Errorf("Do = %v, want %v", err, boom)
			}
		})
	}
	wg.Wait()
	if err := o.Do(closeFn); !errors.Is(err, boom) {
		t.Fatalf("later Do = %v, want the first result", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("close ran %d times, want 1", n)
	}
}

func TestOnceConcurrentCallerWaitsForClose(t *testing.T) {
	var o Once
	release := make(chan struct{})
	started := make(chan struct{})
	go o.Do(func() error { close(started); <-release; return nil })
	<-started
	second := make(chan error, 1)
	go func() { second <- o.Do(func() error { return errors.New("ran twice") }) }()
	select {
	case err := <-second:
		t.Fatalf("second Do returned %v before the first close finished", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("second Do = %v, want the first close's nil", err)
	}
}

func TestWait(t *testing.T) {
	t.Run("finished", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Go(func() {})
		if err := Wait(context.Background(), "loops", wg.Wait); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cancelled ctx", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Wait(ctx, "loops", func() { <-release })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if got := err.Error(); got != "waiting for loops to stop: context canceled" {
			t.Fatalf("message %q", got)
		}
	})
	t.Run("cancelled ctx but already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// A wait that returns at once usually wins; either result is
		// allowed, but an error must wrap the context's.
		if err := Wait(ctx, "loops", func() {}); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
}
