package testutil_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// fakeT records a Fatalf instead of stopping the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // Fatalf must not return; the caller recovers
}

func wait(f *fakeT, d time.Duration, cond func() (bool, string)) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	testutil.WaitForState(f, d, "the thing", cond)
}

func TestWaitFor(t *testing.T) {
	t.Run("returns once the condition holds", func(t *testing.T) {
		n := 0
		testutil.WaitFor(t, 5*time.Second, "three polls", func() bool { n++; return n == 3 })
		if n != 3 {
			t.Fatalf("polled %d times", n)
		}
	})
	t.Run("fails after the bound with the last state", func(t *testing.T) {
		f := &fakeT{TB: t}
		i := 0
		wait(f, 20*time.Millisecond, func() (bool, string) { i++; return false, fmt.Sprintf("poll %d", i) })
		if !strings.Contains(f.failed, "waiting for the thing; last state: poll ") {
			t.Fatalf("failure %q", f.failed)
		}
	})
	t.Run("fails without a state", func(t *testing.T) {
		f := &fakeT{TB: t}
		wait(f, 5*time.Millisecond, func() (bool, string) { return false, "" })
		if !strings.HasSuffix(f.failed, "waiting for the thing") {
			t.Fatalf("failure %q", f.failed)
		}
	})
}

func TestSyncBufferConcurrent(t *testing.T) {
	var b testutil.SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Fatalf("wrote %d bytes, want 400", got)
	}
}
