// Package testutil holds the helpers the project's tests share: polling
// for a condition with a bound, a log buffer safe for concurrent use, and
// the slack that stretches timeouts under the race detector.
//
// It is for tests only; nothing in a binary imports it.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test when d passes
// first; what names the condition in the failure. d bounds a hang: it is
// not a timing assertion.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitForState(t, d, what, func() (bool, string) { return cond(), "" })
}

// WaitForState is WaitFor for a condition that also describes the state it
// saw; the failure quotes the last description.
func WaitForState(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("timed out after %v waiting for %s; last state: %s", d, what, state)
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pause)
		// Quick conditions are seen quickly; slow ones (HTTP polls of
		// daemons, multi-node views) are not polled in a tight loop.
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer that one writer (a logger, a child
// process) and the test may use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
