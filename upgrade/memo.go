package upgrade

import (
	"context"
	"slices"
	"sync"
	"time"
)

// runKey names one run of a package: what its outcome is a function of.
// The limits come from the input state (network limits) and this node's
// Config, which a Manager never changes; the version is what the output's
// global.version must be.
type runKey struct {
	stateSHA256 string
	packageHash string // normalised
	version     string
}

// runOutcome is what running a package on a state gave besides its error:
// the validated output (on success), the module and the fuel used.
type runOutcome struct {
	out  []byte // canonical new state
	sum  string
	info ModuleInfo
	fuel uint64
	// took is how long the run that produced this outcome took; reused
	// tells that this call did not run the package but took the outcome
	// of an earlier run (a dry run) of the same package on the same state.
	took   time.Duration
	reused bool
}

// maxRunMemo bounds the outcomes kept: each holds a whole output state.
const maxRunMemo = 2

// runMemo keeps the latest outcomes of running packages, so the entry
// that executes a package after a dry run of it on the same state (Test, a
// scheduled entry's dry run, or the node's dry run once the proposal
// passes) commits that outcome instead of running the package again, and
// a run asked for while the same run is under way waits for it. Running a
// package is a deterministic function of the package's bytes, the input
// state and the version (the sandbox has no clock, randomness or I/O, and
// fuel bounds its work), which is what lets every node reach the same
// state; so the outcome kept is the outcome a second run would give. Only
// such outcomes are kept: a success or a deterministic failure, never a
// transient one (a deadline, a dead child, a failed download), which the
// next call tries afresh.
type runMemo struct {
	mu    sync.Mutex
	runs  map[runKey]*memoRun
	order []runKey // kept outcomes, oldest first
}

// memoRun is one run, under way until done is closed.
type memoRun struct {
	done chan struct{}
	res  runOutcome
	err  error // nil or a deterministic failure when kept
	kept bool  // res and err are kept (else the run failed transiently)
}

// do returns the kept outcome for k, waits for a run of k under way, or
// runs run itself; a transient error of run is returned and not kept.
func (r *runMemo) do(ctx context.Context, k runKey, run func() (runOutcome, error)) (runOutcome, error) {
	for {
		r.mu.Lock()
		if r.runs == nil {
			r.runs = map[runKey]*memoRun{}
		}
		c, ok := r.runs[k]
		if !ok {
			break // r.mu held
		}
		r.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return runOutcome{}, transient("sandbox: %v", ctx.Err())
		}
		if c.kept {
			res := c.res
			res.reused = true
			return res, c.err
		}
		// That run failed transiently (perhaps its caller gave up): run
		// again, unless another caller already started to.
	}
	c := &memoRun{done: make(chan struct{})}
	r.runs[k] = c
	r.mu.Unlock()

	res, err := run()

	r.mu.Lock()
	if err == nil || classOf(err) != "" {
		c.res, c.err, c.kept = res, err, true
		r.order = append(r.order, k)
		for len(r.order) > maxRunMemo {
			delete(r.runs, r.order[0])
			r.order = r.order[1:]
		}
	} else {
		delete(r.runs, k)
	}
	r.mu.Unlock()
	close(c.done)
	return res, err
}

// retain drops the kept outcomes of runs on states other than stateSHA256
// (after a commit they can only match again after a rollback).
func (r *runMemo) retain(stateSHA256 string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = slices.DeleteFunc(r.order, func(k runKey) bool {
		if k.stateSHA256 != stateSHA256 {
			delete(r.runs, k)
			return true
		}
		return false
	})
}
