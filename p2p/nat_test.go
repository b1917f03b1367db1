package p2p_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

func TestConfigValidateNAT(t *testing.T) {
	cases := map[string]func(*p2p.Config){
		"bad reachability":      func(c *p2p.Config) { c.Reachability = "sometimes" },
		"bad announce":          func(c *p2p.Config) { c.Announce = []string{"1.2.3.4:4001"} },
		"bad no_announce range": func(c *p2p.Config) { c.NoAnnounce = []string{"/ip4/10.0.0.0/ipcidr/40"} },
		"static relay no ID":    func(c *p2p.Config) { c.RelayClient.StaticRelays = []string{"/ip4/203.0.113.1/tcp/4001"} },
		"one relay limit only":  func(c *p2p.Config) { c.RelayService.ConnectionDataBytes = 0 },
		"negative limit":        func(c *p2p.Config) { c.RelayService.ConnectionDuration = -1 },
		"no reservations":       func(c *p2p.Config) { c.RelayService.MaxReservations = 0 },
		"no reservation TTL":    func(c *p2p.Config) { c.RelayService.ReservationTTL = 0 },
		"tiny relay buffer":     func(c *p2p.Config) { c.RelayService.BufferSize = 16 },
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
	c := p2p.DefaultConfig()
	c.RelayService.ConnectionDuration, c.RelayService.ConnectionDataBytes = 0, 0
	if err := c.Validate(); err != nil {
		t.Fatalf("a relay without limits is valid: %v", err)
	}
	c = p2p.DefaultConfig()
	c.RelayService = p2p.RelayServiceConfig{} // off: its limits do not matter
	if err := c.Validate(); err != nil {
		t.Fatalf("relay service off: %v", err)
	}
}

// newIdleHost builds a loopback host without starting discovery, so it
// connects only where the test tells it to.
func newIdleHost(t *testing.T, mutate func(*p2p.Config)) *p2p.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.LoopbackConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := p2p.New(context.Background(), cfg, key, p2ptest.NetID, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Close(ctx)
	})
	return h
}

const echoProto = protocol.ID("/synapse-test/echo/1")

// A and B meet through relay R (B holds a reservation there, A dials B's
// relay address). The connection is limited by R's configured limits:
// streams wait for a direct connection unless the protocol is allowed on
// limited connections (p2p.AllowLimited). PeerConns and the relay's
// counters show what happened.
func TestRelayedConnectionAndAllowLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newIdleHost(t, func(c *p2p.Config) {
		c.Reachability = p2p.ReachabilityPublic // loopback is never public to AutoNAT
		c.RelayService = p2p.DefaultRelayServiceConfig()
		c.RelayService.ConnectionDuration = 90 * time.Second
	})
	if !r.NATStatus().RelayService || r.NATStatus().Reachability != p2p.ReachabilityPublic {
		t.Fatalf("relay status %+v: a node configured public runs the relay service", r.NATStatus())
	}
	a, b := newIdleHost(t, nil), newIdleHost(t, nil)
	b.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})

	if _, err := client.Reserve(ctx, b.Host, r.AddrInfo()); err != nil {
		t.Fatalf("reserve at the relay: %v", err)
	}
	// A and B stop listening: like two nodes behind NATs, B can only be
	// reached through its relay, and B cannot open a direct connection
	// back to A either (its DHT would, as soon as identify told it A's
	// addresses, and the test would see that connection instead).
	stopListening(a)
	stopListening(b)
	circuit := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
	var viaRelay []ma.Multiaddr
	for _, ra := range r.Addrs() {
		viaRelay = append(viaRelay, ra.Encapsulate(circuit))
	}
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: b.ID(), Addrs: viaRelay}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}

	var pc p2p.PeerConns
	for _, p := range a.PeerConns() {
		if p.ID == b.ID() {
			pc = p
		}
	}
	best, ok := pc.Best()
	if !ok || pc.Direct() || !best.Relayed || !best.Limited || best.Relay != r.ID() || best.Transport != "tcp" || best.Inbound {
		t.Fatalf("A's view of B: %+v", pc)
	}
	for _, p := range b.PeerConns() {
		if p.ID == a.ID() {
			if c, _ := p.Best(); !c.Inbound || !c.Relayed {
				t.Fatalf("B's view of A: %+v", p)
			}
		}
	}
	if s := r.NATStats(); s.RelayServiceReservations != 1 || s.RelayServiceCircuits != 1 {
		t.Fatalf("relay counters %+v, want one reservation and one circuit", s)
	}

	// Not allowed on limited connections: libp2p waits for a direct
	// connection that never comes.
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if _, err := a.NewStream(sctx, b.ID(), echoProto); err == nil {
		t.Fatal("a stream went over a limited connection without being allowed")
	}
	other := p2p.AllowLimited(a.Host, nil, "/synapse-test/other/1")
	sctx2, scancel2 := context.WithTimeout(ctx, time.Second)
	defer scancel2()
	if _, err := other.NewStream(sctx2, b.ID(), echoProto); err == nil {
		t.Fatal("AllowLimited for another protocol let this one through")
	}

	var logs testutil.SyncBuffer
	allowed := p2p.AllowLimited(a.Host, slog.New(slog.NewTextHandler(&logs, nil)), echoProto)
	s, err := allowed.NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		t.Fatalf("allowed protocol over the relayed connection: %v", err)
	}
	defer s.Close()
	if !s.Conn().Stat().Limited {
		t.Fatal("the stream did not use the limited connection")
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo over the relay: %q %v", got, err)
	}
	if d := s.Conn().Stat().Extra[client.StatLimitDuration]; d != 90*time.Second {
		t.Fatalf("relay limit duration %v, want the configured 90s", d)
	}
	// The first stream on the limited connection is logged with the
	// relay's limits, a second one is not.
	s2, err := allowed.NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		t.Fatal(err)
	}
	s2.Reset()
	if l := logs.String(); strings.Count(l, "relayed connection with limits") != 1 || !strings.Contains(l, "limit_duration=1m30s") ||
		!strings.Contains(l, "limit_bytes=131072") || !strings.Contains(l, "relay="+r.ID().String()) {
		t.Fatalf("log of limited streams:\n%s", l)
	}
}

// stopListening closes h's direct listeners and keeps its relay ones.
func stopListening(h *p2p.Host) {
	var direct []ma.Multiaddr
	for _, l := range h.Network().ListenAddresses() {
		if _, err := l.ValueForProtocol(ma.P_CIRCUIT); err != nil {
			direct = append(direct, l)
		}
	}
	h.Network().(interface{ ListenClose(...ma.Multiaddr) }).ListenClose(direct...)
}

// A relay configured with no limits relays full connections: every
// protocol may use them.
func TestUnlimitedRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newIdleHost(t, func(c *p2p.Config) {
		c.Reachability = p2p.ReachabilityPublic
		c.RelayService = p2p.DefaultRelayServiceConfig()
		c.RelayService.ConnectionDuration, c.RelayService.ConnectionDataBytes = 0, 0
	})
	a, b := newIdleHost(t, nil), newIdleHost(t, nil)
	b.SetStreamHandler(echoProto, func(s network.Stream) { s.Close() })
	if _, err := client.Reserve(ctx, b.Host, r.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	circuit := r.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit"))
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		t.Fatalf("stream over an unlimited relay: %v", err)
	}
	s.Close()
	if c := s.Conn().Stat(); c.Limited {
		t.Fatalf("connection through an unlimited relay is limited: %+v", c)
	}
}

// Private by configuration: the relay service stays off even when enabled.
func TestForcedPrivateRunsNoRelay(t *testing.T) {
	h := newIdleHost(t, func(c *p2p.Config) {
		c.Reachability = p2p.ReachabilityPrivate
		c.RelayService = p2p.DefaultRelayServiceConfig()
	})
	st := h.NATStatus()
	if st.Reachability != p2p.ReachabilityPrivate || st.RelayService {
		t.Fatalf("status %+v", st)
	}
	if st := newIdleHost(t, nil).NATStatus(); st.Reachability != p2p.ReachabilityUnknown {
		t.Fatalf("a fresh loopback host claims %s", st.Reachability)
	}
}
