// Package p2ptest builds synapse hosts on 127.0.0.1 for tests.
package p2ptest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// NetID is the network ID test hosts use unless told otherwise.
const NetID = "00000000deadbeef"

// NewHost builds and starts a host on 127.0.0.1 with a fresh key, closed at
// the end of the test. mutate may adjust the loopback config (may be nil);
// opts go to p2p.New (for example a connection gater through
// p2p.WithLibp2pOptions).
func NewHost(t testing.TB, mutate func(*p2p.Config), opts ...p2p.Option) *p2p.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.LoopbackConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := p2p.New(context.Background(), cfg, key, NetID, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Close(ctx)
	})
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	return h
}

// NewSwarm starts n hosts where every host but the first has host 0 as its
// only bootstrap peer.
func NewSwarm(t testing.TB, n int) []*p2p.Host {
	t.Helper()
	hosts := []*p2p.Host{NewHost(t, nil)}
	var boot []string
	for _, a := range hosts[0].P2PAddrs() {
		boot = append(boot, a.String())
	}
	for i := 1; i < n; i++ {
		hosts = append(hosts, NewHost(t, func(c *p2p.Config) { c.Bootstrap = boot }))
	}
	return hosts
}
