package simnet_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// setVersionGuest is the hand-written WAT guest of the scale harnesses
// (testdata/set-version): its own work is microseconds; upgrade.Run around
// it costs ~8 ms of CPU in process (BenchmarkGuestCPU, docs/benchmarks.md).
const setVersionGuest = "testdata/set-version/set-version.wasm"

// BenchmarkDemo runs the whole demo (propose → vote → ratify → fetch over
// bitswap → execute everywhere) on N nodes with 3 validators and reports the
// timeline, raft leader changes during the demo, the longest heartbeat lag
// and heap and RSS per node. package=rust is the Rust add-feature-flag (the
// fast guest, the demo's default), go the Go-built one (3.3 MB, ~0.5 s of
// CPU per execution), wat the hand-written set-version guest. One
// iteration is one fresh network:
//
//	go test ./simnet -run '^$' -bench Demo -benchtime 1x -timeout 60m
func BenchmarkDemo(b *testing.B) {
	for _, c := range []struct {
		pkg string
		n   int
	}{{"rust", 12}, {"go", 12}, {"wat", 12}, {"rust", 50}, {"go", 50}, {"rust", 100}, {"go", 100}, {"wat", 100}} {
		b.Run(fmt.Sprintf("package=%s/nodes=%d", c.pkg, c.n), func(b *testing.B) {
			pkg := setVersionGuest
			if c.pkg != "wat" {
				pkg = example(b, map[string]string{"rust": "add-feature-flag-rs", "go": "add-feature-flag"}[c.pkg])
			}
			for i := 0; i < b.N; i++ {
				benchDemo(b, c.n, pkg, nil)
			}
		})
	}
}

// BenchmarkRaftUnderLoad is the scenario: 100 nodes, 3 validators,
// node 0 (a validator) proposes the 3.3 MB Go-built package and 99 nodes
// fetch it. "before" restores what the node did before: LAN raft timeouts
// (500/500/250 ms), no serving cap on validators, every prefetch at once;
// "after" is the current defaults (2 s/2 s/1 s, 8 MiB/s, 3 s spread).
//
//	go test ./simnet -run '^$' -bench RaftUnderLoad -benchtime 1x -timeout 60m
func BenchmarkRaftUnderLoad(b *testing.B) {
	before := func(_ int, c *node.Config) {
		c.Raft.HeartbeatTimeout, c.Raft.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
		c.Raft.LeaderLeaseTimeout = 250 * time.Millisecond
		c.Bitswap.ValidatorServeRate = 0
		c.Bitswap.ValidatorServeWorkers = c.Bitswap.ServeWorkers
		c.PrefetchSpread = 0
	}
	for _, v := range []struct {
		name string
		tune func(int, *node.Config)
	}{{"before", before}, {"after", nil}} {
		b.Run(v.name, func(b *testing.B) {
			pkg := example(b, "add-feature-flag")
			for i := 0; i < b.N; i++ {
				benchDemo(b, 100, pkg, v.tune)
			}
		})
	}
}

// BenchmarkDryRunOnApproval runs the 100-node demo with the WAT guest
// without and with the dry run on approval (node config
// dry_run_on_approval): with it, every node runs the package when the
// proposal passes (after its prefetch offset) and commits that outcome when
// the entry becomes final; without it, all 100 sandbox runs start when the
// entry becomes final.
//
//	go test ./simnet -run '^$' -bench DryRunOnApproval -benchtime 1x -timeout 60m
func BenchmarkDryRunOnApproval(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("dry_run_on_approval=%v", on), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchDemo(b, 100, setVersionGuest, func(_ int, c *node.Config) { c.DryRunOnApproval = on })
			}
		})
	}
}

func benchDemo(b *testing.B, n int, pkg string, tune func(int, *node.Config)) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	net, err := simnet.Start(ctx, simnet.Config{Nodes: n, Validators: 3, APIBasePort: -1, VotingPeriod: 60, Tune: tune})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close(context.Background())
	if err := net.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	res, err := net.RunDemo(ctx, simnet.DemoOptions{Package: pkg})
	if err != nil {
		b.Fatalf("demo: %v (timeline %v, leader changes %d, max heartbeat lag %d ms)", err, res.Timeline, res.LeaderChanges, res.MaxHeartbeatLagMs)
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

// BenchmarkGuestCPU is the CPU one execution of an upgrade package costs,
// on the genesis state of a 100-node devnet: the hand-written set-version
// guest, the Rust and the Go-built add-feature-flag, in process (compiled once,
// from the compilation cache) and in a sandbox child process (the
// default). cpu_ms/exec counts this process and its children (user +
// system).
//
//	go test ./simnet -run '^$' -bench GuestCPU -benchtime 20x
func BenchmarkGuestCPU(b *testing.B) {
	state := devnetState(b, 100)
	for _, g := range []struct{ name, pkg string }{{"wat", setVersionGuest}, {"rust", "add-feature-flag-rs"}, {"go", "add-feature-flag"}} {
		for _, iso := range []upgrade.Isolation{upgrade.IsolationInProcess, upgrade.IsolationProcess} {
			b.Run(fmt.Sprintf("guest=%s/%s", g.name, iso), func(b *testing.B) {
				pkg := g.pkg
				if g.name != "wat" {
					pkg = example(b, g.pkg)
				}
				cfg := upgrade.DefaultConfig()
				cfg.Isolation = iso
				cfg.CompilationCacheDir = b.TempDir()
				if _, err := upgrade.Run(context.Background(), cfg, pkg, state); err != nil { // compile, fill the cache
					b.Fatal(err)
				}
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := upgrade.Run(context.Background(), cfg, pkg, state); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu_ms/exec")
			})
		}
	}
}

// devnetState is the initial network state of an n-node devnet genesis.
func devnetState(b *testing.B, n int) []byte {
	ids := make([]peer.ID, n)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		ids[i], _ = peer.IDFromPrivateKey(k)
	}
	g, err := genesis.Devnet("bench", ids, 3, 60)
	if err != nil {
		b.Fatal(err)
	}
	st, err := g.InitialState()
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// cpuTime is the user + system CPU time of this process and its waited-for
// children.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}
