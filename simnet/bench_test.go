package simnet_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// setVersionGuest is the hand-written WAT guest of the scale harnesses
// (testdata/set-version): microseconds per execution.
const setVersionGuest = "testdata/set-version/set-version.wasm"

// BenchmarkDemo runs the whole demo (propose → vote → ratify → fetch over
// bitswap → execute everywhere) on N nodes with 3 validators and reports the
// timeline, raft leader changes during the demo, the longest heartbeat lag
// and heap and RSS per node. guest=go is the Go-built add-feature-flag
// (3.3 MB, ~0.5 s of CPU per execution), guest=wat the set-version guest.
// One iteration is one fresh network:
//
//	go test ./simnet -run '^$' -bench Demo -benchtime 1x -timeout 60m
func BenchmarkDemo(b *testing.B) {
	for _, g := range []struct{ name, pkg string }{{"wat", setVersionGuest}, {"go", ""}} {
		for _, n := range []int{12, 50, 100} {
			b.Run(fmt.Sprintf("guest=%s/nodes=%d", g.name, n), func(b *testing.B) {
				pkg := g.pkg
				if pkg == "" {
					pkg = example(b, "add-feature-flag")
				}
				for i := 0; i < b.N; i++ {
					benchDemo(b, n, pkg)
				}
			})
		}
	}
}

func benchDemo(b *testing.B, n int, pkg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	net, err := simnet.Start(ctx, simnet.Config{Nodes: n, Validators: 3, APIBasePort: -1, VotingPeriod: 60})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close(context.Background())
	if err := net.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	res, err := net.RunDemo(ctx, simnet.DemoOptions{Package: pkg})
	if err != nil {
		b.Fatalf("demo: %v (timeline %v)", err, res.Timeline)
	}
	heap, rss := memPerNode(n)
	tl := res.Timeline
	b.ReportMetric(float64(tl["final"]), "final_ms")
	b.ReportMetric(float64(tl["executed_all"]-tl["ratified"]), "ratified_to_executed_ms")
	b.ReportMetric(float64(tl["executed_all"]), "total_ms")
	b.ReportMetric(float64(res.LeaderChanges), "leader_changes")
	b.ReportMetric(float64(res.MaxHeartbeatLagMs), "max_hb_lag_ms")
	b.ReportMetric(heap, "heap_MiB/node")
	b.ReportMetric(rss, "rss_MiB/node")
}

// BenchmarkMemory starts N nodes (3 validators, APIs off) on 127.0.0.1,
// waits until the swarm is connected and 10 s more (DHT, GossipSub meshes,
// raft settle), and reports heap in use, RSS and goroutines per node:
//
//	go test ./simnet -run '^$' -bench Memory -benchtime 1x -timeout 30m
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{12, 100, 300} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				net, err := simnet.Start(ctx, simnet.Config{Nodes: n, Validators: 3, APIBasePort: -1, VotingPeriod: 60})
				if err != nil {
					b.Fatal(err)
				}
				if err := net.WaitConnected(ctx); err != nil {
					b.Fatal(err)
				}
				time.Sleep(10 * time.Second)
				heap, rss := memPerNode(n)
				b.ReportMetric(heap, "heap_MiB/node")
				b.ReportMetric(rss, "rss_MiB/node")
				b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/node")
				net.Close(context.Background())
				cancel()
			}
		})
	}
}

// memPerNode is the heap in use (after a GC) and the resident set of the
// process, divided by n, in MiB. Sandbox children are other processes and
// not counted.
func memPerNode(n int) (heap, rss float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / float64(n) / (1 << 20), float64(rssBytes()) / float64(n) / (1 << 20)
}

// rssBytes reads VmRSS from /proc/self/status (0 where there is none).
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
