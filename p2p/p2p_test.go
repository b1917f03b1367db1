package p2p_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

func TestIdentitySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", p2p.IdentityFile)
	k1, created, err := p2p.LoadOrCreateIdentity(path)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %v, want 0600", st.Mode().Perm())
	}
	k2, created, err := p2p.LoadOrCreateIdentity(path)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	id1, _ := peer.IDFromPrivateKey(k1)
	id2, _ := peer.IDFromPrivateKey(k2)
	if id1 != id2 {
		t.Fatalf("peer ID changed across restart: %s → %s", id1, id2)
	}
}

func TestCorruptIdentityIsAnErrorAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), p2p.IdentityFile)
	junk := []byte("definitely not a protobuf key")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := p2p.LoadOrCreateIdentity(path)
	if !errors.Is(err, p2p.ErrCorruptIdentity) {
		t.Fatalf("err = %v, want ErrCorruptIdentity", err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != string(junk) {
		t.Fatal("corrupt identity file was replaced")
	}
}

func TestWriteIdentityRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), p2p.IdentityFile)
	k, _, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2p.WriteIdentity(path, k); !errors.Is(err, os.ErrExist) {
		t.Fatalf("overwrite err = %v, want ErrExist", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]func(*p2p.Config){
		"no listen":      func(c *p2p.Config) { c.ListenAddrs = nil },
		"bad listen":     func(c *p2p.Config) { c.ListenAddrs = []string{"tcp://1.2.3.4"} },
		"bad bootstrap":  func(c *p2p.Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} },
		"bad watermarks": func(c *p2p.Config) { c.ConnLow, c.ConnHigh = 10, 5 },
		"bad dht mode":   func(c *p2p.Config) { c.DHTMode = "sometimes" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := p2p.DefaultConfig()
			mutate(&c)
			if err := c.Validate(); !errors.Is(err, p2p.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if err := p2p.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

// Five nodes that only know node 0 end up connected to each other: they
// find one another through the DHT, not through node 0's connections.
func TestSwarmFormsThroughDHT(t *testing.T) {
	hosts := p2ptest.NewSwarm(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		full := true
		for _, h := range hosts {
			for _, o := range hosts {
				if h != o && h.Network().Connectedness(o.ID()) != network.Connected {
					full = false
				}
			}
		}
		// Each host also has the others in its DHT routing table.
		for _, h := range hosts {
			if h.DHT.RoutingTable().Size() < len(hosts)-1 {
				full = false
			}
		}
		if full {
			break
		}
		select {
		case <-ctx.Done():
			for i, h := range hosts {
				t.Logf("host %d has %d peers, %d in its routing table", i, len(h.Network().Peers()), h.DHT.RoutingTable().Size())
			}
			t.Fatal("swarm did not become fully connected")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Once every node has the low watermark of peers, no node looks up the
// rendezvous key any more: the DHT servers that hold it would otherwise
// answer every node every interval with every record of the key, O(N²)
// of their uplink (docs/benchmarks.md, "Rendezvous discovery").
func TestNoRendezvousLookupsAtTheWatermark(t *testing.T) {
	const n = 5
	cfg := func(c *p2p.Config) {
		c.ConnLow = n - 1 // only a fully connected node has the watermark
		c.DiscoveryInterval = 100 * time.Millisecond
	}
	hosts := []*p2p.Host{p2ptest.NewHost(t, cfg)}
	var boot []string
	for _, a := range hosts[0].P2PAddrs() {
		boot = append(boot, a.String())
	}
	for i := 1; i < n; i++ {
		hosts = append(hosts, p2ptest.NewHost(t, func(c *p2p.Config) { cfg(c); c.Bootstrap = boot }))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		full := true
		for _, h := range hosts {
			if len(h.Network().Peers()) < n-1 {
				full = false
			}
		}
		if full {
			break
		}
		if time.Now().After(deadline) {
			for i, h := range hosts {
				t.Logf("host %d: %d peers, %d lookups", i, len(h.Network().Peers()), h.RendezvousLookups())
			}
			t.Fatal("swarm did not become fully connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A lookup under way when the last connection came may still count.
	time.Sleep(200 * time.Millisecond)
	before := make([]int64, n)
	for i, h := range hosts {
		before[i] = h.RendezvousLookups()
	}
	time.Sleep(time.Second) // ten discovery intervals
	for i, h := range hosts {
		if got := h.RendezvousLookups(); got != before[i] || len(h.Network().Peers()) < n-1 {
			t.Errorf("host %d with %d peers looked the key up %d times in 10 intervals at the watermark", i, len(h.Network().Peers()), got-before[i])
		}
	}
}

func TestBootstrapReconnects(t *testing.T) {
	a := p2ptest.NewHost(t, nil)
	var boot []string
	for _, ad := range a.P2PAddrs() {
		boot = append(boot, ad.String())
	}
	b := p2ptest.NewHost(t, func(c *p2p.Config) { c.Bootstrap = boot })
	waitConnected(t, b, a.ID())
	if err := b.Network().ClosePeer(a.ID()); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, b, a.ID())
}

func TestCloseIsIdempotent(t *testing.T) {
	h := p2ptest.NewHost(t, nil)
	ctx := context.Background()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitConnected(t *testing.T, h *p2p.Host, p peer.ID) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.Network().Connectedness(p) != network.Connected {
		if time.Now().After(deadline) {
			t.Fatalf("%s not connected to %s", h.ID(), p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A peer whose address is on the swarm's dial backoff (a dial that failed
// elsewhere, such as the DHT's in a simultaneous open) is still reached
// through Dialer, which bitswap uses to dial the providers the DHT names;
// Host.Connect (discovery, bootstrap: records that may be stale) keeps the
// backoff, as the raw libp2p host does.
func TestDialerDialsProviderInBackoff(t *testing.T) {
	client := func(c *p2p.Config) { c.DHTMode = p2p.DHTModeClient }
	a, b := p2ptest.NewHost(t, client), p2ptest.NewHost(t, client)
	sw, ok := a.Network().(*swarm.Swarm)
	if !ok {
		t.Fatalf("network is %T", a.Network())
	}
	for _, addr := range b.Addrs() {
		sw.Backoff().AddBackoff(b.ID(), addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Host.Connect(ctx, b.AddrInfo()); !errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("raw connect: %v, want dial backoff", err)
	}
	if err := a.Connect(ctx, b.AddrInfo()); !errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("Host.Connect: %v, want dial backoff", err)
	}
	if err := a.Dialer().Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatalf("Dialer().Connect: %v", err)
	}
	if a.Network().Connectedness(b.ID()) != network.Connected {
		t.Fatal("not connected")
	}
}

// Two nodes that dial each other at the same moment from their reused TCP
// ports can meet in one simultaneously opened connection where both speak as
// the TLS client (about one pair in five on loopback). Connect retries once,
// so neither dial fails.
func TestSimultaneousDialsConnect(t *testing.T) {
	client := func(c *p2p.Config) { c.DHTMode = p2p.DHTModeClient }
	for i := 0; i < 30; i++ {
		a, b := p2ptest.NewHost(t, client), p2ptest.NewHost(t, client)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := make(chan struct{})
		errs := make(chan error, 2)
		dial := func(from, to *p2p.Host) {
			<-start
			errs <- from.Connect(ctx, to.AddrInfo())
		}
		go dial(a, b)
		go dial(b, a)
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("pair %d: %v", i, err)
			}
		}
		cancel()
		if a.Network().Connectedness(b.ID()) != network.Connected {
			t.Errorf("pair %d not connected", i)
		}
	}
}
