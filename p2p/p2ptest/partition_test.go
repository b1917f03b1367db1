package p2ptest_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

func member(t *testing.T) p2ptest.Member {
	g := p2ptest.NewGater()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ConnectionGater(g), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return p2ptest.Member{Host: h, Gater: g}
}

func connect(a, b host.Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
}

func TestPartitionAndHeal(t *testing.T) {
	a, b, c := member(t), member(t), member(t)
	for _, pair := range [][2]p2ptest.Member{{a, b}, {a, c}, {b, c}} {
		if err := connect(pair[0].Host, pair[1].Host); err != nil {
			t.Fatal(err)
		}
	}

	p2ptest.Partition([]p2ptest.Member{a}, []p2ptest.Member{b, c})
	testutil.WaitFor(t, 5*time.Second, "a cut off from b and c", func() bool {
		for _, x := range []p2ptest.Member{b, c} {
			if a.Host.Network().Connectedness(x.Host.ID()) == network.Connected ||
				x.Host.Network().Connectedness(a.Host.ID()) == network.Connected {
				return false
			}
		}
		return true
	})
	if b.Host.Network().Connectedness(c.Host.ID()) != network.Connected {
		t.Fatal("the partition closed a connection inside a group")
	}
	// Neither side can dial across.
	if err := connect(a.Host, b.Host); err == nil {
		t.Fatal("a dialled b across the partition")
	}
	if err := connect(c.Host, a.Host); err == nil {
		t.Fatal("c dialled a across the partition")
	}

	p2ptest.Heal([]p2ptest.Member{a}, []p2ptest.Member{b, c})
	if a.Gater.Blocked(b.Host.ID()) || c.Gater.Blocked(a.Host.ID()) {
		t.Fatal("heal left peers blocked")
	}
	if err := connect(a.Host, b.Host); err != nil {
		t.Fatalf("a cannot dial b after heal: %v", err)
	}
}
