package upgrade

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countRuns returns a context whose sandbox children count themselves in
// n once they run the guest.
func countRuns(n *atomic.Int32) context.Context {
	return context.WithValue(context.Background(), childRunningKey{}, func(int) { n.Add(1) })
}

// An entry executed after a dry run of its package on the same state
// commits the dry run's outcome — success or deterministic failure — and
// does not run the package again.
func TestExecuteReusesDryRun(t *testing.T) {
	t.Parallel()
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	var runs atomic.Int32
	ctx := countRuns(&runs)

	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	test, err := m.Test(ctx, p)
	if err != nil || !test.Success {
		t.Fatalf("%+v %v", test, err)
	}
	r, err := m.Execute(ctx, Entry{Seq: 1, Package: p})
	if err != nil || !r.Success || r.PostStateSHA256 != test.StateSHA256 || r.FuelUsed != test.FuelUsed {
		t.Fatalf("execute %+v %v, dry run %+v", r, err, test)
	}
	if got := runs.Load(); got != 1 {
		t.Fatalf("%d sandbox runs, want 1 (the dry run's outcome reused)", got)
	}
	if _, _, sum := m.State(); sum != test.StateSHA256 {
		t.Fatalf("state %s, dry run said %s", sum, test.StateSHA256)
	}

	bad := pkgFor(t, srv, "hostile-nonjson", "2.0.0")
	tb, err := m.Test(ctx, bad)
	if err != nil || tb.Success || tb.ErrorClass != ClassInvalidOutput {
		t.Fatalf("%+v %v", tb, err)
	}
	r, err = m.Execute(ctx, Entry{Seq: 2, Package: bad})
	if err != nil || r.Success || r.ErrorClass != ClassInvalidOutput || r.PostStateSHA256 != test.StateSHA256 {
		t.Fatalf("%+v %v", r, err)
	}
	if got := runs.Load(); got != 2 {
		t.Fatalf("%d sandbox runs, want 2", got)
	}
	if h := m.History(); len(h) != 2 || h[1].ErrorClass != ClassInvalidOutput {
		t.Fatalf("history %+v", h)
	}
}

// A dry run on another state is not reused: once the state changed, the
// package runs on the new state.
func TestExecuteRunsAgainOnAnotherState(t *testing.T) {
	t.Parallel()
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	var runs atomic.Int32
	ctx := countRuns(&runs)
	flag := pkgFor(t, srv, "command-feature-flag", "1.3.0")
	if r, err := m.Test(ctx, flag); err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := m.Execute(ctx, Entry{Seq: 1, Package: pkgFor(t, srv, "add-feature-flag", "1.2.0")}); err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}
	r, err := m.Execute(ctx, Entry{Seq: 2, Package: flag})
	if err != nil || !r.Success || r.Version != "1.3.0" {
		t.Fatalf("%+v %v", r, err)
	}
	if got := runs.Load(); got != 3 {
		t.Fatalf("%d sandbox runs, want 3 (the dry run was on the state before seq 1)", got)
	}
}

// A dry run that fails transiently (here its caller gave up) is not kept:
// the entry runs the package itself.
func TestTransientDryRunIsNotReused(t *testing.T) {
	t.Parallel()
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Test(gone, p); !isTransient(err) {
		t.Fatalf("dry run whose caller gave up: %v, want transient", err)
	}
	var runs atomic.Int32
	r, err := m.Execute(countRuns(&runs), Entry{Seq: 1, Package: p})
	if err != nil || !r.Success || runs.Load() != 1 {
		t.Fatalf("%+v %v after %d runs", r, err, runs.Load())
	}
}

// runMemo runs one key once however many callers ask at the same time,
// keeps at most maxRunMemo outcomes, never keeps a transient failure, and
// a caller that gives up waiting gets a transient error.
func TestRunMemo(t *testing.T) {
	var r runMemo
	k := runKey{stateSHA256: "s", packageHash: "p", version: "1.0.1"}
	release := make(chan struct{})
	var calls atomic.Int32
	run := func() (runOutcome, error) {
		calls.Add(1)
		<-release
		return runOutcome{sum: "out"}, nil
	}
	var wg sync.WaitGroup
	results := make([]runOutcome, 4)
	for i := range results {
		wg.Go(func() {
			res, err := r.do(context.Background(), k, run)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	// A caller that stops waiting is told so, and the run goes on.
	for {
		r.mu.Lock()
		_, started := r.runs[k]
		r.mu.Unlock()
		if started {
			break
		}
		time.Sleep(time.Millisecond)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.do(gone, k, run); !isTransient(err) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
	wg.Wait()
	reused := 0
	for _, res := range results {
		if res.sum != "out" {
			t.Fatalf("result %+v", res)
		}
		if res.reused {
			reused++
		}
	}
	if calls.Load() != 1 || reused != 3 {
		t.Fatalf("%d runs, %d reused; want 1 and 3", calls.Load(), reused)
	}

	// A transient failure is returned, not kept.
	flaky := runKey{stateSHA256: "s", packageHash: "q", version: "1.0.1"}
	errFlaky := transient("download failed")
	if _, err := r.do(context.Background(), flaky, func() (runOutcome, error) { return runOutcome{}, errFlaky }); !errors.Is(err, errFlaky) {
		t.Fatal(err)
	}
	res, err := r.do(context.Background(), flaky, func() (runOutcome, error) { return runOutcome{sum: "second"}, nil })
	if err != nil || res.sum != "second" || res.reused {
		t.Fatalf("%+v %v", res, err)
	}
	// A deterministic failure is kept.
	trap := runKey{stateSHA256: "s", packageHash: "r", version: "1.0.1"}
	r.do(context.Background(), trap, func() (runOutcome, error) { return runOutcome{}, pkgErr(ClassTrap, "unreachable") })
	if res, err := r.do(context.Background(), trap, nil); classOf(err) != ClassTrap || !res.reused {
		t.Fatalf("%+v %v", res, err)
	}
	// Bounded: the oldest outcome (k) was dropped for the newer two.
	if len(r.runs) != maxRunMemo || r.runs[k] != nil {
		t.Fatalf("kept %d outcomes: %v", len(r.runs), r.order)
	}
	// Outcomes on other states go at a commit.
	r.retain("another state")
	if len(r.runs) != 0 || len(r.order) != 0 {
		t.Fatalf("kept %v after retain", r.order)
	}
}
