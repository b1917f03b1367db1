package node

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// fetchTracker records the progress of the bitswap downloads this node
// runs (the executor's and the prefetcher's, through fetchIPFS), for
// GET /fetches and the dashboard. Downloads over http(s) happen inside the
// executor and are not tracked here.
type fetchTracker struct {
	mu     sync.Mutex
	nextID int
	active map[int]*httpapi.Fetch
	// recent holds finished downloads, newest last, at most keepFinished.
	recent []httpapi.Fetch
	// notify announces a change; progress is announced at most every
	// progressEvery per download.
	notify func()
}

const (
	keepFinished  = 8
	progressEvery = 250 * time.Millisecond
)

func newFetchTracker(notify func()) *fetchTracker {
	return &fetchTracker{active: map[int]*httpapi.Fetch{}, notify: notify}
}

// trackedFetch is one download's handle.
type trackedFetch struct {
	t        *fetchTracker
	id       int
	last     time.Time // last progress announcement
	finished bool
}

// start records a download of pkg (an ipfs:// URL).
func (t *fetchTracker) start(pkg string) *trackedFetch {
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	t.active[id] = &httpapi.Fetch{Package: pkg, StartedAt: time.Now().UTC().Format(time.RFC3339)}
	t.mu.Unlock()
	t.notify()
	return &trackedFetch{t: t, id: id, last: time.Now()}
}

// progress is bitswap's progress callback: done bytes of total so far. It
// runs on the reader's goroutine and only takes a lock.
func (f *trackedFetch) progress(done, total int64) {
	f.t.mu.Lock()
	r, ok := f.t.active[f.id]
	if ok {
		r.Done, r.Total = done, total
	}
	announce := ok && (time.Since(f.last) >= progressEvery || (total > 0 && done >= total))
	if announce {
		f.last = time.Now()
	}
	f.t.mu.Unlock()
	if announce {
		f.t.notify()
	}
}

// finish ends the download: complete when every byte arrived, otherwise
// with err (nil err on an incomplete download means it was abandoned).
// Only the first call counts.
func (f *trackedFetch) finish(complete bool, err error) {
	f.t.mu.Lock()
	r, ok := f.t.active[f.id]
	if !ok || f.finished {
		f.t.mu.Unlock()
		return
	}
	f.finished = true
	delete(f.t.active, f.id)
	r.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	r.Complete = complete
	switch {
	case err != nil:
		r.Error = err.Error()
	case !complete:
		r.Error = "stopped before the end"
	}
	f.t.recent = append(f.t.recent, *r)
	if len(f.t.recent) > keepFinished {
		f.t.recent = f.t.recent[len(f.t.recent)-keepFinished:]
	}
	f.t.mu.Unlock()
	f.t.notify()
}

// list is every running download (oldest first), then the finished ones
// (newest first).
func (t *fetchTracker) list() []httpapi.Fetch {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]int, 0, len(t.active))
	for id := range t.active {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]httpapi.Fetch, 0, len(ids)+len(t.recent))
	for _, id := range ids {
		out = append(out, *t.active[id])
	}
	for i := len(t.recent) - 1; i >= 0; i-- {
		out = append(out, t.recent[i])
	}
	return out
}

// fetchesAPI serves GET /fetches.
func (n *Node) fetchesAPI(ctx context.Context) ([]httpapi.Fetch, error) {
	return n.fetches.list(), nil
}
