package bitswap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// plainBoxo is boxo's behaviour: 1 s provider search delay, 1 MiB server
// window, 16 KiB messages, no prefetch, no eager provider dials.
func plainBoxo(c *Config) {
	c.ProviderSearchDelay = time.Second
	c.boxoDefaults = true
}

func httpOrigin(b *testing.B, data []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "pkg.wasm", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

func httpGet(b *testing.B, url string, want int) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(want) {
		b.Fatalf("GET: %d bytes, %v", n, err)
	}
}

func fetchAll(b testing.TB, s *Store, c cid.Cid, want int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := s.Fetch(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != int64(want) {
		b.Fatalf("fetch: %d bytes, %v", n, err)
	}
}

// One peer on loopback TCP holds 16 MiB; a fresh node connected to it
// fetches it. Compared with an HTTP GET of the same bytes from a local
// server (MB/s columns within one run).
func BenchmarkFetch16MiBOnePeer(b *testing.B) {
	data := randomBytes(10, 16<<20)
	url := httpOrigin(b, data)
	b.Run("http", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			httpGet(b, url, len(data))
		}
	})
	// The same over TLS, and over TLS with the SHA-256 the executor computes
	// on every download: bitswap encrypts (Noise) and hashes every block, so
	// these are the like-for-like baselines; plain http is the issue's.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "pkg.wasm", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(tlsSrv.Close)
	for _, hashIt := range []bool{false, true} {
		name := "https"
		if hashIt {
			name = "https+sha256"
		}
		b.Run(name, func(b *testing.B) {
			client := tlsSrv.Client()
			b.SetBytes(int64(len(data)))
			for range b.N {
				resp, err := client.Get(tlsSrv.URL)
				if err != nil {
					b.Fatal(err)
				}
				var w io.Writer = io.Discard
				h := sha256.New()
				if hashIt {
					w = h
				}
				n, err := io.Copy(w, resp.Body)
				resp.Body.Close()
				if err != nil || n != int64(len(data)) {
					b.Fatalf("GET: %d bytes, %v", n, err)
				}
			}
		})
	}
	for _, v := range []struct {
		name string
		mut  func(*Config)
	}{{"bitswap", nil}, {"bitswap-plain-boxo", plainBoxo}} {
		b.Run(v.name, func(b *testing.B) {
			origin := newNode(b, nodeOpts{noDHT: true, mutateC: v.mut})
			res, err := origin.s.Add(context.Background(), bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				f := newNode(b, nodeOpts{noDHT: true, mutateC: v.mut})
				connect(b, f, origin)
				b.StartTimer()
				fetchAll(b, f.s, res.CID, len(data))
				b.StopTimer()
				f.s.Close(context.Background())
				f.h.Close(context.Background())
				b.StartTimer()
			}
		})
	}
}

// A 3 MiB package whose only holder the fetcher is not connected to: the
// fetcher knows a hub and must find the holder through the DHT. This is
// where boxo's 1 s provider search delay shows.
func BenchmarkFetch3MiBWithDiscovery(b *testing.B) {
	data := randomBytes(11, 3<<20)
	for _, v := range []struct {
		name string
		mut  func(*Config)
	}{{"tuned", nil}, {"plain-boxo", plainBoxo}, {"plain-boxo-50ms-search", func(c *Config) {
		plainBoxo(c)
		c.ProviderSearchDelay = DefaultProviderSearchDelay
	}}} {
		b.Run(v.name, func(b *testing.B) {
			hub := newNode(b, nodeOpts{})
			holder := newNode(b, nodeOpts{boot: bootAddrs(hub.h), lonely: true, mutateC: v.mut})
			testutil.WaitFor(b, 10*time.Second, "routing table", func() bool { return holder.h.DHT.RoutingTable().Size() > 0 })
			ctx := context.Background()
			res, err := holder.s.Add(ctx, bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if err := holder.s.Provide(ctx, res.CID); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				f := newNode(b, nodeOpts{boot: bootAddrs(hub.h), lonely: true, mutateC: v.mut})
				testutil.WaitFor(b, 10*time.Second, "routing table", func() bool { return f.h.DHT.RoutingTable().Size() > 0 })
				f.h.Network().ClosePeer(holder.h.ID())
				holder.h.Network().ClosePeer(f.h.ID())
				b.StartTimer()
				fetchAll(b, f.s, res.CID, len(data))
				b.StopTimer()
				f.s.Close(context.Background())
				f.h.Close(context.Background())
				b.StartTimer()
			}
		})
	}
}

const swarmSize = 30

// 30 nodes fetch the same 8 MiB package at once from one origin (all
// connected, mocknet streams); versus 30 clients of one HTTP origin on
// loopback TCP. ns/op is the time until all 30 are done.
func BenchmarkSwarm30Fetch8MiB(b *testing.B) {
	data := randomBytes(12, 8<<20)
	url := httpOrigin(b, data)
	b.Run("http", func(b *testing.B) {
		for range b.N {
			var wg sync.WaitGroup
			for range swarmSize {
				wg.Add(1)
				go func() { defer wg.Done(); httpGet(b, url, len(data)) }()
			}
			wg.Wait()
		}
	})
	for _, v := range []struct {
		name string
		mut  func(*Config)
	}{{"bitswap", nil}, {"bitswap-plain-boxo", plainBoxo}} {
		b.Run(v.name, func(b *testing.B) { benchSwarm(b, data, v.mut) })
	}
}

func benchSwarm(b *testing.B, data []byte, mut func(*Config)) {
	for range b.N {
		b.StopTimer()
		stores := mockSwarm(b, swarmSize+1, mut)
		res, err := stores[0].Add(context.Background(), bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for _, s := range stores[1:] {
			wg.Add(1)
			go func() { defer wg.Done(); fetchAll(b, s, res.CID, len(data)) }()
		}
		wg.Wait()
		b.StopTimer()
		for _, s := range stores {
			s.Close(context.Background())
		}
		b.StartTimer()
	}
}

// mockSwarm builds n fully connected mocknet hosts with a store each
// (no DHT: every peer is connected to every other).
func mockSwarm(b testing.TB, n int, mut func(*Config)) []*Store {
	cfg := DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	mn, err := mocknet.FullMeshConnected(n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mn.Close() })
	var out []*Store
	for _, h := range mn.Hosts() {
		s, err := New(context.Background(), cfg, Deps{
			Host:      h,
			Datastore: dssync.MutexWrap(datastore.NewMapDatastore()),
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close(context.Background()) })
		out = append(out, s)
	}
	return out
}
