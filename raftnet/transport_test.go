package raftnet

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/p2p/p2ptest"
)

type stubRouting map[peer.ID]peer.AddrInfo

func (r stubRouting) FindPeer(_ context.Context, p peer.ID) (peer.AddrInfo, error) {
	if ai, ok := r[p]; ok {
		return ai, nil
	}
	return peer.AddrInfo{}, errors.New("not found")
}

// The stream layer dials by peer ID, finding addresses through routing
// when the peerstore has none, and its conns carry bytes both ways.
func TestStreamLayerDialAndAccept(t *testing.T) {
	a, b := p2ptest.NewHost(t, nil), p2ptest.NewHost(t, nil)
	proto := ProtocolID(p2ptest.NetID)
	lb := newStreamLayer(b.Host, proto, nil, nil)
	defer lb.Close()
	b.SetStreamHandler(proto, func(s network.Stream) { lb.deliver(s) })

	bare := newStreamLayer(a.Host, proto, nil, nil)
	if _, err := bare.Dial(raft.ServerAddress(b.ID().String()), time.Second); err == nil {
		t.Fatal("dial without any address succeeded")
	}
	if _, err := bare.Dial("not-a-peer-id", time.Second); err == nil {
		t.Fatal("dial of a malformed address succeeded")
	}
	blocked := newStreamLayer(a.Host, proto, func(peer.ID) bool { return false }, nil)
	if _, err := blocked.Dial(raft.ServerAddress(b.ID().String()), time.Second); !errors.Is(err, errNotValidator) {
		t.Fatalf("blocked dial: %v", err)
	}

	la := newStreamLayer(a.Host, proto, nil, stubRouting{b.ID(): b.AddrInfo()})
	defer la.Close()
	conn, err := la.Dial(raft.ServerAddress(b.ID().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.RemoteAddr().String() != b.ID().String() || conn.LocalAddr().String() != a.ID().String() {
		t.Fatalf("addrs %s -> %s", conn.LocalAddr(), conn.RemoteAddr())
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	srv, err := lb.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if lb.Addr().String() != b.ID().String() {
		t.Errorf("listener addr %s", lb.Addr())
	}
	lb.Close()
	if _, err := lb.Accept(); err == nil {
		t.Error("accept after close")
	}
}

func TestValidatorConnectionsProtected(t *testing.T) {
	c := newCluster(t, 3, 4)
	c.leader(span(0, 3))
	cm := c.nodes[0].h.ConnManager()
	testutil.WaitFor(t, 5*time.Second, "validator connections protected", func() bool {
		return cm.IsProtected(c.nodes[1].h.ID(), protectTag) && cm.IsProtected(c.nodes[2].h.ID(), protectTag)
	})
	if cm.IsProtected(c.nodes[3].h.ID(), protectTag) {
		t.Error("non-validator protected")
	}
	if c.nodes[3].h.ConnManager().IsProtected(c.nodes[0].h.ID(), protectTag) {
		t.Error("a non-validator protects validator connections")
	}
}
