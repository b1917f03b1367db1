package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// benchNet starts n nodes on 127.0.0.1 in a ring with two chords per node
// (degree ~6). Sync runs rarely, so propagation is measured on GossipSub.
func benchNet(b *testing.B, n int) ([]*tnode, *rulesBox) {
	keys := make([]crypto.PrivKey, n)
	for i := range keys {
		keys[i] = newKey(b)
	}
	rb := &rulesBox{}
	rb.set(makeRules(keys, 1, genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600}))
	cfg := DefaultConfig()
	cfg.SyncInterval = time.Hour
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = startNode(b, keys[i], memDS(), rb, cfg)
	}
	for i := 0; i < n; i++ {
		connect(b, nodes[i], nodes[(i+1)%n])
		if n > 4 {
			connect(b, nodes[i], nodes[(i+n/3)%n])
		}
	}
	// Let the GossipSub meshes form.
	time.Sleep(3 * time.Second)
	return nodes, rb
}

// BenchmarkPropagation: time from publishing a proposal until it is in
// the views of all N nodes (every node's ProposalChanged event).
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			nodes, _ := benchNet(b, n)
			chans := make([]<-chan Event, n)
			for i, nd := range nodes {
				ch, stop := nd.svc.Subscribe()
				defer stop()
				chans[i] = ch
			}
			rng := rand.New(rand.NewPCG(7, 7))
			var lat []time.Duration
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				src := nodes[rng.IntN(n)]
				start := time.Now()
				pid, err := src.svc.PublishProposal(context.Background(), testBody(it))
				if err != nil {
					b.Fatal(err)
				}
				for i, ch := range chans {
					deadline := time.After(30 * time.Second)
					for got := false; !got; {
						select {
						case ev := <-ch:
							got = ev.Kind == ProposalChanged && ev.ProposalID == pid
						case <-deadline:
							b.Fatalf("node %d never saw %s", i, pid)
						}
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkCatchUp: a node that missed 10,000 ops syncs them from one peer;
// reports the time and the bytes received relative to the ops' size.
// "empty": the node has nothing (whole buckets are streamed); "partial":
// it already has the 100 proposals, so most buckets go through the ID
// exchange.
func BenchmarkCatchUp(b *testing.B) {
	keys := make([]crypto.PrivKey, 100)
	for i := range keys {
		keys[i] = newKey(b)
	}
	rb := &rulesBox{}
	rb.set(makeRules(keys, 1, genesis.DefaultGovernance()))
	cfg := DefaultConfig()
	cfg.SyncInterval = time.Hour
	src := startNode(b, keys[0], memDS(), rb, cfg)
	ops := genOps(b, keys[:99], 100) // 100 proposals + 99×100 votes = 10,000 ops
	for _, raw := range ops {
		if err := src.svc.Ingest(raw); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []string{"empty", "partial"} {
		b.Run(mode, func(b *testing.B) {
			for it := 0; it < b.N; it++ {
				dst := startNode(b, newKey(b), memDS(), rb, cfg)
				have, total := 0, 0
				for i, raw := range ops {
					if mode == "partial" && i < 100 {
						if err := dst.svc.Ingest(raw); err != nil {
							b.Fatal(err)
						}
						have++
						continue
					}
					total += len(raw)
				}
				start := time.Now()
				connect(b, dst, src) // sync on connect
				deadline := time.Now().Add(2 * time.Minute)
				for dst.svc.OpCount() < len(ops) {
					if time.Now().After(deadline) {
						b.Fatalf("caught up %d of %d ops", dst.svc.OpCount(), len(ops))
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed := time.Since(start)
				in := dst.svc.syncer.bytesIn.Load()
				b.ReportMetric(float64(elapsed.Milliseconds()), "ms/catchup")
				b.ReportMetric(float64(len(ops)-have), "missing-ops")
				b.ReportMetric(float64(total), "missing-bytes")
				b.ReportMetric(float64(in), "sync-bytes")
				b.ReportMetric(float64(in)/float64(total), "bytes-ratio")
				dst.stop()
			}
		})
	}
}
