package raftnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

// benchNode is a bare raft node with the production stores (raft-wal +
// file snapshots) and FSM, on either transport.
type benchNode struct {
	raft *raft.Raft
	id   raft.ServerID
	addr raft.ServerAddress
}

// newBenchCluster starts n raft nodes on loopback over "libp2p" (our
// StreamLayer) or "tcp" (hashicorp's NetworkTransport over TCP) and
// returns them once one leads.
func newBenchCluster(b *testing.B, kind string, n int) (leader *raft.Raft) {
	b.Helper()
	type pending struct {
		trans raft.Transport
		id    raft.ServerID
		addr  raft.ServerAddress
		dir   string
	}
	var ps []pending
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch kind {
	case "libp2p":
		var hosts []*streamLayer
		for i := 0; i < n; i++ {
			h := p2ptest.NewHost(b, nil)
			l := newStreamLayer(h.Host, ProtocolID(p2ptest.NetID), nil, nil)
			h.SetStreamHandler(l.proto, func(s network.Stream) { l.deliver(s) })
			for _, o := range hosts {
				if err := h.Connect(ctx, o.h.Peerstore().PeerInfo(o.h.ID())); err != nil {
					b.Fatal(err)
				}
			}
			hosts = append(hosts, l)
			tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
				Stream: l, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
			})
			ps = append(ps, pending{tr, raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()), b.TempDir()})
		}
	case "tcp":
		for i := 0; i < n; i++ {
			tr, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, hclog.NewNullLogger())
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, pending{tr, raft.ServerID(fmt.Sprint("n", i)), tr.LocalAddr(), b.TempDir()})
		}
	default:
		b.Fatalf("unknown transport %q", kind)
	}
	var conf raft.Configuration
	for _, p := range ps {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: p.id, Address: p.addr})
	}
	var rafts []*raft.Raft
	for _, p := range ps {
		// raft's default (1 s) timeouts: they do not affect steady-state
		// commits, and keep leadership stable on a busy 2-core machine.
		rc := raft.DefaultConfig()
		rc.LocalID = p.id
		rc.CommitTimeout = DefaultConfig().CommitTimeout
		rc.SnapshotThreshold = 1 << 20 // no snapshots during the run
		rc.Logger = hclog.NewNullLogger()
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(mkdir(b, filepath.Join(p.dir, "wal")), wal.WithMetaStore(meta))
		if err != nil {
			b.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStore(p.dir, 1, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if err := raft.BootstrapCluster(rc, w, w, snaps, p.trans, conf); err != nil {
			b.Fatal(err)
		}
		r, err := raft.NewRaft(rc, newFSM(nil), w, w, snaps, p.trans)
		if err != nil {
			b.Fatal(err)
		}
		rafts = append(rafts, r)
		b.Cleanup(func() {
			r.Shutdown().Error()
			if c, ok := p.trans.(io.Closer); ok {
				c.Close()
			}
			w.Close()
			meta.Close()
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader")
	return nil
}

func mkdir(b *testing.B, d string) string {
	if err := osMkdirAll(d); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkRatifyCommit measures Ratify commits on a 3-validator cluster:
// "seq" applies one command at a time (commit latency p50/p99), "pipe"
// keeps 32 in flight (throughput).
func BenchmarkRatifyCommit(b *testing.B) {
	for _, kind := range []string{"libp2p", "tcp"} {
		b.Run(kind+"/seq", func(b *testing.B) {
			r := newBenchCluster(b, kind, 3)
			cmds := benchCommands(b, kind, b.N)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := r.Apply(cmds[i], 5*time.Second).Error(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			el := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(b.N)/el.Seconds(), "commits/s")
		})
		b.Run(kind+"/pipe", func(b *testing.B) {
			r := newBenchCluster(b, kind, 3)
			cmds := benchCommands(b, kind, b.N)
			const inflight = 32
			futs := make(chan raft.ApplyFuture, inflight)
			errs := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() {
				var first error
				for f := range futs {
					if err := f.Error(); err != nil && first == nil {
						first = err
					}
				}
				errs <- first
			}()
			for i := 0; i < b.N; i++ {
				futs <- r.Apply(cmds[i], 5*time.Second)
			}
			close(futs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "commits/s")
		})
	}
}

func benchCommands(b *testing.B, kind string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		c, err := encodeRatify(testRatify(fmt.Sprintf("upgrade_bench_%s_%d", kind, i)))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = c
	}
	return out
}

func osMkdirAll(d string) error { return os.MkdirAll(d, 0o700) }
