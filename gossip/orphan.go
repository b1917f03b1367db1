package gossip

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// orphan is a valid-looking op waiting for its deps.
type orphan struct {
	raw     []byte
	from    peer.ID
	added   time.Time
	missing []OpID
}

// orphanPool holds ops with unknown deps, bounded in count and age. The
// oldest orphan is dropped when it is full. Ages use the local clock: the
// pool is a cache, not replicated state.
type orphanPool struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[OpID]*orphan
	order []OpID // insertion order, may hold removed IDs
	byDep map[OpID][]OpID
}

func newOrphanPool(max int, ttl time.Duration) *orphanPool {
	return &orphanPool{max: max, ttl: ttl, items: map[OpID]*orphan{}, byDep: map[OpID][]OpID{}}
}

// add holds an op; it reports false if it was already held.
func (p *orphanPool) add(id OpID, o *orphan) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.items[id]; ok {
		return false
	}
	for len(p.items) >= p.max && len(p.order) > 0 {
		p.removeLocked(p.order[0])
		p.order = p.order[1:]
	}
	p.items[id] = o
	p.order = append(p.order, id)
	p.compactLocked()
	for _, d := range o.missing {
		p.byDep[d] = append(p.byDep[d], id)
	}
	return true
}

func (p *orphanPool) removeLocked(id OpID) {
	o, ok := p.items[id]
	if !ok {
		return
	}
	delete(p.items, id)
	for _, d := range o.missing {
		ids := p.byDep[d]
		for i, x := range ids {
			if x == id {
				ids = append(ids[:i:i], ids[i+1:]...)
				break
			}
		}
		if len(ids) == 0 {
			delete(p.byDep, d)
		} else {
			p.byDep[d] = ids
		}
	}
}

// waitingFor removes and returns the orphans that wait for dep.
func (p *orphanPool) waitingFor(dep OpID) []*orphan {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := p.byDep[dep]
	var out []*orphan
	for _, id := range ids {
		if o, ok := p.items[id]; ok {
			out = append(out, o)
		}
	}
	for _, id := range append([]OpID(nil), ids...) {
		p.removeLocked(id)
	}
	p.compactLocked()
	return out
}

// expire drops orphans older than the TTL.
func (p *orphanPool) expire(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for id, o := range p.items {
		if now.Sub(o.added) > p.ttl {
			p.removeLocked(id)
			n++
		}
	}
	p.compactLocked()
	return n
}

// missing lists the deps orphans wait for (bounded by max).
func (p *orphanPool) missingDeps(max int) []OpID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []OpID
	for d := range p.byDep {
		if len(out) == max {
			break
		}
		out = append(out, d)
	}
	return out
}

func (p *orphanPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items)
}

// compactLocked drops removed IDs from order once it has grown.
func (p *orphanPool) compactLocked() {
	if len(p.order) < 2*p.max+16 {
		return
	}
	kept := p.order[:0]
	for _, id := range p.order {
		if _, ok := p.items[id]; ok {
			kept = append(kept, id)
		}
	}
	p.order = kept
}
