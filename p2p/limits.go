package p2p

import (
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Per connection the resource manager should allow, for a node that keeps
// many: the long-lived streams of GossipSub, the DHT, bitswap and raft in
// both directions, and short ones (identify, sync, fetches) beside them.
const (
	streamsPerConn   = 16
	resourceHeadroom = 64
)

// resourceLimits are libp2p's defaults scaled to the machine
// (rcmgr.DefaultLimits.AutoScale), raised where the connection manager's
// high watermark asks for more. The defaults suit a node with ~100 peers:
// on a 24 GiB machine they refuse the 253rd inbound connection and the
// 80th one still in its handshake. A node told to keep connHigh peers — a
// bootstrap node or validator of a large network — must not have the
// resource manager refuse them first: in a simulated 1000-node network
// the validators, every node's DHT servers, refused most of the nodes
// dialling them, and one validator could reach no other and never heard
// from the raft leader. Only the limits below what connHigh needs are
// raised; everything else (memory, per-peer, per-protocol limits) stays.
func resourceLimits(connHigh int) rcmgr.ConcreteLimitConfig {
	base := rcmgr.DefaultLimits.AutoScale()
	p := base.ToPartialLimitConfig()
	conns := connHigh + resourceHeadroom
	atLeast := func(v *rcmgr.LimitVal, n int) {
		if *v != rcmgr.Unlimited && int(*v) < n {
			*v = rcmgr.LimitVal(n)
		}
	}
	atLeast(&p.System.ConnsInbound, conns)
	atLeast(&p.System.ConnsOutbound, conns)
	atLeast(&p.System.Conns, conns)
	atLeast(&p.System.StreamsInbound, conns*streamsPerConn)
	atLeast(&p.System.StreamsOutbound, conns*streamsPerConn)
	atLeast(&p.System.Streams, 2*conns*streamsPerConn)
	// Connections and streams not yet attached to a peer or protocol:
	// the nodes that join at once can all be in their handshakes.
	atLeast(&p.Transient.ConnsInbound, conns/2)
	atLeast(&p.Transient.ConnsOutbound, conns/2)
	atLeast(&p.Transient.Conns, conns/2)
	atLeast(&p.Transient.StreamsInbound, conns)
	atLeast(&p.Transient.StreamsOutbound, conns)
	atLeast(&p.Transient.Streams, conns)
	// One long-lived stream per peer and protocol (GossipSub, the DHT,
	// bitswap), and per service.
	atLeast(&p.ProtocolDefault.StreamsInbound, 2*conns)
	atLeast(&p.ProtocolDefault.StreamsOutbound, 2*conns)
	atLeast(&p.ProtocolDefault.Streams, 4*conns)
	atLeast(&p.ServiceDefault.StreamsInbound, 2*conns)
	atLeast(&p.ServiceDefault.StreamsOutbound, 2*conns)
	atLeast(&p.ServiceDefault.Streams, 4*conns)
	return p.Build(base)
}
