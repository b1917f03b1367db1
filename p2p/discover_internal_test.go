package p2p

import (
	"testing"
	"time"
)

// A node below the watermark looks up every 2 s while lookups bring new
// peers and backs off to the discovery interval while they bring none (a
// network smaller than the watermark keeps every node below it for good).
func TestLookupBackoff(t *testing.T) {
	fast, period := 2*time.Second, 30*time.Second
	wait := time.Second // the first lookup follows the 1 s poll for a first peer
	var got []time.Duration
	for _, found := range []int{0, 0, 0, 0, 0, 0, 2, 0} {
		wait = lookupBackoff(wait, found, fast, period)
		got = append(got, wait)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 2 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	// An interval shorter than 2 s is the fast pace too.
	if w := lookupBackoff(time.Second, 0, time.Second, time.Second); w != time.Second {
		t.Fatalf("wait %v with a 1 s interval", w)
	}
}
