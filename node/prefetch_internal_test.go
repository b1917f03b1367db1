package node

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
)

// Prefetch offsets stay inside the window, are the same on every call and
// spread over it: every tenth of a 3 s window gets some of 1000 nodes.
func TestSpreadOffset(t *testing.T) {
	const w = 3 * time.Second
	buckets := make([]int, 10)
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("12D3KooNode%d\x00ipfs://bafkexample", i)
		d := spreadOffset(key, w)
		if d < 0 || d >= w {
			t.Fatalf("offset %v outside [0, %v)", d, w)
		}
		if d2 := spreadOffset(key, w); d2 != d {
			t.Fatalf("offset of one key changed: %v, %v", d, d2)
		}
		buckets[int(d*10/w)]++
	}
	for i, c := range buckets {
		if c < 50 {
			t.Fatalf("bucket %d of the window holds %d of 1000 nodes: %v", i, c, buckets)
		}
	}
	if spreadOffset("a", 0) != 0 {
		t.Fatal("a zero window must give a zero offset")
	}
}

// A burst of events becomes each changed proposal once, in order of first
// mention, without other kinds and without the proposals already decided.
func TestPendingProposals(t *testing.T) {
	ch := make(chan gossip.Event, 8)
	for _, ev := range []gossip.Event{
		{Kind: gossip.ProposalChanged, ProposalID: "b"},
		{Kind: gossip.EntryFinal, Seq: 1},
		{Kind: gossip.ProposalChanged, ProposalID: "done"},
		{Kind: gossip.ProposalChanged, ProposalID: "a"},
		{Kind: gossip.ProposalChanged, ProposalID: "b"},
	} {
		ch <- ev
	}
	first := gossip.Event{Kind: gossip.ProposalChanged, ProposalID: "c"}
	got := pendingProposals(first, ch, map[string]bool{"done": true})
	if want := []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if len(ch) != 0 {
		t.Fatalf("%d events left queued", len(ch))
	}
	close(ch)
	if got := pendingProposals(gossip.Event{Kind: gossip.ReportAdded}, ch, nil); got != nil {
		t.Fatalf("a closed channel and no proposal event gave %q", got)
	}
}
