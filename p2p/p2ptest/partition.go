package p2ptest

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is a connection gater that refuses every connection, in either
// direction, with the peers it blocks. Give each test host its own (with
// libp2p.ConnectionGater) and cut the network with Partition.
type Gater struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

// NewGater returns a gater that blocks nobody.
func NewGater() *Gater { return &Gater{blocked: map[peer.ID]bool{}} }

// Block refuses connections with ids from now on (open ones stay: see
// Partition).
func (g *Gater) Block(ids ...peer.ID) { g.set(true, ids) }

// Unblock lets connections with ids through again.
func (g *Gater) Unblock(ids ...peer.ID) { g.set(false, ids) }

// UnblockAll lets every peer through again.
func (g *Gater) UnblockAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.blocked)
}

// Blocked reports whether connections with id are refused.
func (g *Gater) Blocked(id peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[id]
}

func (g *Gater) set(block bool, ids []peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		if block {
			g.blocked[id] = true
		} else {
			delete(g.blocked, id)
		}
	}
}

// InterceptPeerDial refuses to dial a blocked peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return !g.Blocked(p) }

// InterceptAddrDial refuses to dial a blocked peer at any address.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.Blocked(p) }

// InterceptAccept accepts every connection before the handshake (the
// peer is not known yet).
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection from or to a blocked peer once the
// handshake has named it.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.Blocked(p)
}

// InterceptUpgraded accepts every upgraded connection.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Member is a host and the gater it was built with.
type Member struct {
	Host  host.Host
	Gater *Gater
}

// Partition cuts every connection between groups a and b: each side's
// gater blocks the other side's peers, and open connections between them
// close. Connections inside a group are untouched.
func Partition(a, b []Member) {
	for _, x := range a {
		for _, y := range b {
			x.Gater.Block(y.Host.ID())
			y.Gater.Block(x.Host.ID())
		}
	}
	for _, x := range a {
		for _, y := range b {
			x.Host.Network().ClosePeer(y.Host.ID())
			y.Host.Network().ClosePeer(x.Host.ID())
		}
	}
}

// Heal undoes Partition between groups a and b. Nothing redials: the
// hosts' own discovery, bootstrap or the test reconnects them.
func Heal(a, b []Member) {
	for _, x := range a {
		for _, y := range b {
			x.Gater.Unblock(y.Host.ID())
			y.Gater.Unblock(x.Host.ID())
		}
	}
}
