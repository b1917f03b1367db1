package node

import (
	"errors"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

func TestEventHub(t *testing.T) {
	h := newEventHub()
	a, cancelA := h.subscribe()
	b, cancelB := h.subscribe()
	e := httpapi.Event{Kind: httpapi.EventEntryFinal, Seq: 1}
	h.emit(e)
	if got := <-a; got != e {
		t.Fatalf("a got %+v", got)
	}
	if got := <-b; got != e {
		t.Fatalf("b got %+v", got)
	}
	cancelA()
	cancelA() // idempotent
	if _, ok := <-a; ok {
		t.Fatal("a not closed after cancel")
	}
	if h.subscribers() != 1 {
		t.Fatalf("%d subscribers", h.subscribers())
	}

	// b stops reading: the hub never blocks, and b gets a resync before
	// the next event once it has room again.
	for i := 0; i < hubBuffer+50; i++ {
		h.emit(httpapi.Event{Kind: httpapi.EventPeers})
	}
	for i := 0; i < hubBuffer; i++ {
		<-b
	}
	h.emit(httpapi.Event{Kind: httpapi.EventFetch})
	if got := <-b; got.Kind != httpapi.EventResync {
		t.Fatalf("after an overflow: %+v, want resync", got)
	}
	if got := <-b; got.Kind != httpapi.EventFetch {
		t.Fatalf("after the resync: %+v", got)
	}
	cancelB()

	c, _ := h.subscribe()
	h.close()
	if _, ok := <-c; ok {
		t.Fatal("subscription open after close")
	}
	d, cancelD := h.subscribe()
	if _, ok := <-d; ok {
		t.Fatal("subscription after close is open")
	}
	cancelD()
	h.emit(e) // no subscribers, no panic
}

func TestFetchTracker(t *testing.T) {
	notes := 0
	tr := newFetchTracker(func() { notes++ })
	a := tr.start("ipfs://a")
	b := tr.start("ipfs://b")
	a.progress(10, 100)
	a.progress(100, 100) // complete: announced at once
	if l := tr.list(); len(l) != 2 || l[0].Package != "ipfs://a" || l[0].Done != 100 || l[0].Total != 100 || l[0].FinishedAt != "" {
		t.Fatalf("running downloads %+v", l)
	}
	a.finish(true, nil)
	a.finish(false, errors.New("late")) // only the first finish counts
	b.finish(false, errors.New("no providers"))
	l := tr.list()
	if len(l) != 2 || l[0].Package != "ipfs://b" || l[0].Error != "no providers" || l[0].Complete ||
		l[1].Package != "ipfs://a" || !l[1].Complete || l[1].Error != "" || l[1].FinishedAt == "" {
		t.Fatalf("finished downloads (newest first) %+v", l)
	}
	c := tr.start("ipfs://c")
	c.finish(false, nil)
	if l := tr.list(); l[0].Error != "stopped before the end" {
		t.Fatalf("abandoned download %+v", l[0])
	}
	for i := 0; i < 2*keepFinished; i++ {
		tr.start("ipfs://x").finish(true, nil)
	}
	if l := tr.list(); len(l) != keepFinished {
		t.Fatalf("%d finished downloads kept, want %d", len(l), keepFinished)
	}
	if notes < 8 {
		t.Fatalf("only %d change notifications", notes)
	}
}
