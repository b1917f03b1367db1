package p2p_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/p2p"
)

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func closeHost(t *testing.T, h *p2p.Host) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Close(ctx)
	})
}

// A host without TCP refuses a TCP listen address, and listens on what the
// extra libp2p options add.
func TestHostOptionsWithoutTCP(t *testing.T) {
	cfg := p2p.LoopbackConfig() // /ip4/127.0.0.1/tcp/0
	if h, err := p2p.New(context.Background(), cfg, newKey(t), "00000000deadbeef", nil, p2p.WithoutTCP()); err == nil {
		closeHost(t, h)
		t.Fatalf("a host without TCP listens on %v", h.Addrs())
	}

	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	h, err := p2p.New(context.Background(), cfg, newKey(t), "00000000deadbeef", nil,
		p2p.WithoutTCP(), p2p.WithoutRelay(), p2p.WithoutMetrics(),
		p2p.WithLibp2pOptions(libp2p.ListenAddrStrings("/ip4/127.0.0.2/udp/0/quic-v1")))
	if err != nil {
		t.Fatal(err)
	}
	closeHost(t, h)
	var quic2 bool
	for _, a := range h.Addrs() {
		s := a.String()
		if strings.Contains(s, "/tcp/") {
			t.Errorf("TCP address %s on a host without TCP", s)
		}
		if strings.HasPrefix(s, "/ip4/127.0.0.2/udp/") {
			quic2 = true
		}
	}
	if !quic2 {
		t.Errorf("the listen address of WithLibp2pOptions is missing: %v", h.Addrs())
	}

	// Two such hosts connect over QUIC.
	h2, err := p2p.New(context.Background(), cfg, newKey(t), "00000000deadbeef", nil, p2p.WithoutTCP())
	if err != nil {
		t.Fatal(err)
	}
	closeHost(t, h2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h2.Connect(ctx, h.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// A bad extra libp2p option fails New with the host's error.
func TestHostOptionsBadLibp2pOption(t *testing.T) {
	_, err := p2p.New(context.Background(), p2p.LoopbackConfig(), newKey(t), "00000000deadbeef", nil,
		p2p.WithLibp2pOptions(libp2p.ListenAddrStrings("/not/a/multiaddr")))
	if err == nil || !strings.Contains(err.Error(), "p2p: start host") {
		t.Fatalf("err = %v, want a start-host error", err)
	}
}

// Without the relay transport, a config that asks for relays is refused
// before anything starts.
func TestHostOptionsWithoutRelayRefusesRelays(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*p2p.Config)
	}{
		{"relay_client", func(c *p2p.Config) { c.RelayClient.Enabled = true }},
		{"relay_service", func(c *p2p.Config) { c.RelayService.Enabled = true }},
	} {
		cfg := p2p.LoopbackConfig()
		tc.set(&cfg)
		h, err := p2p.New(context.Background(), cfg, newKey(t), "00000000deadbeef", nil, p2p.WithoutRelay())
		if err == nil {
			closeHost(t, h)
		}
		if !errors.Is(err, p2p.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", tc.name, err)
		}
	}
}
