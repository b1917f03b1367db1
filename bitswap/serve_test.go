package bitswap

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// A holder capped at 256 KiB/s serves 1.5 MiB in no less than the cap
// allows (one 512 KiB burst, then the rate), the bytes arrive intact, and
// lifting the cap reports 0.
func TestServeRateCapsWhatAHolderSends(t *testing.T) {
	holder := newNode(t, nodeOpts{noDHT: true, mutateC: func(c *Config) { c.ServeRate = 256 << 10 }})
	f := newNode(t, nodeOpts{noDHT: true})
	if got := holder.s.ServeRate(); got != 256<<10 {
		t.Fatalf("ServeRate() = %d after Config.ServeRate 256 KiB/s", got)
	}
	data := randomBytes(7, 3<<19) // 1.5 MiB: 6 leaves of 256 KiB
	res, err := holder.s.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	connect(t, f, holder)
	start := time.Now()
	got := readAll(t, mustFetch(t, f.s, res.CID))
	took := time.Since(start)
	if !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	// (1.5 MiB − 512 KiB burst) / 256 KiB/s = 4 s; allow for the bucket
	// starting full and the root arriving before the fetch measures.
	if took < 3*time.Second {
		t.Fatalf("1.5 MiB arrived in %v from a holder capped at 256 KiB/s", took)
	}
	holder.s.SetServeRate(0)
	if got := holder.s.ServeRate(); got != 0 {
		t.Fatalf("ServeRate() = %d after SetServeRate(0)", got)
	}
}

// Closing the store ends a write that waits for the limiter.
func TestServeLimiterWaitEndsOnClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := newServeLimiter(ctx, minServeRate)
	if err := l.wait(serveBurst); err != nil { // the full bucket
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.wait(serveBurst) }() // 8 s at 64 KiB/s
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("wait returned nil after the store closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not end when the store closed")
	}
}
