package gossip

import (
	"testing"
	"time"
)

func TestOrphanPoolBounds(t *testing.T) {
	p := newOrphanPool(3, time.Minute)
	dep := OpID{9}
	t0 := time.Unix(1000, 0)
	for i := byte(1); i <= 5; i++ {
		p.add(OpID{i}, &orphan{raw: []byte{i}, added: t0.Add(time.Duration(i) * time.Second), missing: []OpID{dep}})
	}
	if p.len() != 3 {
		t.Fatalf("pool holds %d, want 3 (bounded)", p.len())
	}
	if p.add(OpID{5}, &orphan{missing: []OpID{dep}}) {
		t.Fatal("duplicate orphan added")
	}
	// The oldest two were dropped; the rest wait for dep.
	got := p.waitingFor(dep)
	if len(got) != 3 || got[0].raw[0] != 3 {
		t.Fatalf("released %d orphans", len(got))
	}
	if p.len() != 0 || len(p.byDep) != 0 {
		t.Fatal("released orphans still held")
	}
	p.add(OpID{7}, &orphan{added: t0, missing: []OpID{dep}})
	p.add(OpID{8}, &orphan{added: t0.Add(2 * time.Minute), missing: []OpID{dep}})
	if n := p.expire(t0.Add(2*time.Minute + time.Second)); n != 1 || p.len() != 1 {
		t.Fatalf("expired %d, %d left", n, p.len())
	}
}
