// Package lifecycle holds the one Close rule of synapse-p2p's components
// (docs/architecture.md): Close(ctx) error stops the component the first
// time and returns that first result on every later or concurrent call;
// it waits for the component's goroutines only until ctx is done.
package lifecycle

import (
	"context"
	"fmt"
	"sync"
)

// Once runs a component's close function once. The zero value is ready.
type Once struct {
	once sync.Once
	err  error
}

// Do runs close on the first call and returns its error to every call.
// Calls made while close runs wait for it to return.
func (o *Once) Do(close func() error) error {
	o.once.Do(func() { o.err = close() })
	return o.err
}

// Wait runs wait (for example a sync.WaitGroup's Wait) and returns when it
// does, or when ctx is done first: then the error wraps ctx.Err() and names
// what was being waited for; wait still runs to its end in the background.
func Wait(ctx context.Context, what string, wait func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Prefer a finished wait when both are ready.
		select {
		case <-done:
			return nil
		default:
		}
		return fmt.Errorf("waiting for %s to stop: %w", what, ctx.Err())
	}
}
