package simnet_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// BenchmarkDemo runs the whole demo (propose → vote → ratify → fetch over
// bitswap → execute everywhere) on N nodes with the Rust and the Go
// add-feature-flag and reports the timeline and the heap per node. One
// iteration is one fresh network:
//
//	go test ./simnet -run '^$' -bench Demo -benchtime 1x
func BenchmarkDemo(b *testing.B) {
	for _, c := range []struct {
		pkg string
		n   int
	}{{"rust", 12}, {"go", 12}, {"rust", 50}, {"go", 50}, {"rust", 100}, {"go", 100}} {
		n := c.n
		b.Run(fmt.Sprintf("package=%s/nodes=%d", c.pkg, n), func(b *testing.B) {
			pkg := example(b, map[string]string{"rust": "add-feature-flag-rs", "go": "add-feature-flag"}[c.pkg])
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				net, err := simnet.Start(ctx, simnet.Config{Nodes: n, Validators: 3, APIBasePort: -1, VotingPeriod: 60})
				if err != nil {
					b.Fatal(err)
				}
				if err := net.WaitConnected(ctx); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				res, err := net.RunDemo(ctx, simnet.DemoOptions{Package: pkg})
				if err != nil {
					b.Fatalf("demo: %v (timeline %v)", err, res.Timeline)
				}
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				tl := res.Timeline
				b.ReportMetric(float64(tl["final"]), "final_ms")
				b.ReportMetric(float64(tl["executed_all"]-tl["ratified"]), "ratified_to_executed_ms")
				b.ReportMetric(float64(tl["executed_all"]), "total_ms")
				b.ReportMetric(float64(after.HeapInuse)/float64(n)/(1<<20), "heap_MiB/node")
				net.Close(context.Background())
				cancel()
			}
		})
	}
}
