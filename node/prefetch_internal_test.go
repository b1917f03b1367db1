package node

import (
	"fmt"
	"testing"
	"time"
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
