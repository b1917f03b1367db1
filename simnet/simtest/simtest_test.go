package simtest_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synapse-p2p/synapse-p2p/simnet/simtest"
)

func guest(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(guestPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SIMTEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lv := slog.LevelInfo
	lv.UnmarshalText([]byte(os.Getenv("SIMTEST_LOG")))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// runStory starts n nodes with v validators in a synctest bubble, waits
// for the swarm, runs the story and closes everything; the bubble ends only
// when every goroutine the nodes started has ended.
func runStory(t *testing.T, n, v int) (st simtest.Story, heapPerNode float64) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // virtual
		defer cancel()
		net, err := simtest.Start(ctx, simtest.Config{Nodes: n, Validators: v, Dir: t.TempDir(), Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := net.Close(context.Background()); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
		formStart := time.Now()
		if err := net.WaitFormed(ctx, 3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // GossipSub meshes settle (heartbeat 1 s)
		t.Logf("formed in %v (virtual)", time.Since(formStart))
		st, err = net.RunStory(ctx, guest(t), "1.2.0")
		if err != nil {
			t.Fatalf("%v\n%+v", err, st)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapPerNode = float64(ms.HeapInuse) / float64(n) / (1 << 20)
	})
	return st, heapPerNode
}

// A small simulated network carries the whole story: every node sees the
// proposal, votes, the entry becomes final everywhere, every node executes
// it to the same state and reports.
func TestSimulatedStory(t *testing.T) {
	st, heap := runStory(t, 16, 4)
	t.Logf("story %+v heap/node %.1f MiB", st, heap)
	if st.Executed.Count != 16 || st.StateHashes != 1 || st.ReportedAll < 0 {
		t.Fatalf("story incomplete: %+v", st)
	}
}
