package raftnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// ProtocolID is the raft protocol of a network: /synapse/<netID>/raft/1.
func ProtocolID(netID string) protocol.ID {
	return protocol.ID("/synapse/" + netID + "/raft/1")
}

// errNotValidator is returned when a raft stream would go to or come from
// a peer outside the validator set.
var errNotValidator = errors.New("raftnet: peer is not a validator")

// peerAddr is a net.Addr naming a peer; its String is the raft
// ServerAddress (and ServerID) of that peer.
type peerAddr peer.ID

func (a peerAddr) Network() string { return "libp2p" }
func (a peerAddr) String() string  { return peer.ID(a).String() }

// streamConn adapts a libp2p stream to net.Conn.
type streamConn struct{ network.Stream }

func (c streamConn) LocalAddr() net.Addr  { return peerAddr(c.Conn().LocalPeer()) }
func (c streamConn) RemoteAddr() net.Addr { return peerAddr(c.Conn().RemotePeer()) }

// streamLayer is raft's StreamLayer over libp2p streams. Inbound streams are
// handed to it by the Service's stream handler, which has already refused
// non-validators; it lives as long as one raft instance.
type streamLayer struct {
	h     host.Host
	proto protocol.ID
	// allowDial reports whether a raft stream may be opened to p.
	allowDial func(p peer.ID) bool
	// routing finds addresses of a peer the peerstore has none for (may be nil).
	routing routing.PeerRouting
	// wrap wraps dialled connections (Deps.WrapConn; may be nil).
	wrap func(peer.ID, net.Conn) net.Conn

	accept    chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(h host.Host, proto protocol.ID, allowDial func(peer.ID) bool, r routing.PeerRouting) *streamLayer {
	return &streamLayer{
		h: h, proto: proto, allowDial: allowDial, routing: r,
		accept: make(chan net.Conn), closed: make(chan struct{}),
	}
}

// deliver hands an inbound stream to Accept, or resets it when the layer
// closes first or nobody accepts within a second.
func (l *streamLayer) deliver(s network.Stream) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case l.accept <- streamConn{s}:
	case <-l.closed:
		s.Reset()
	case <-t.C:
		s.Reset()
	}
}

// Accept implements net.Listener.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it stops accepting, it does not touch the
// host.
func (l *streamLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener: this host's peer ID.
func (l *streamLayer) Addr() net.Addr { return peerAddr(l.h.ID()) }

// Dial implements raft.StreamLayer: address is a peer ID.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("raftnet: dial %q: %w", address, err)
	}
	if l.allowDial != nil && !l.allowDial(p) {
		return nil, fmt.Errorf("raftnet: dial %s: %w", p, errNotValidator)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-l.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if l.routing != nil && len(l.h.Peerstore().Addrs(p)) == 0 && l.h.Network().Connectedness(p) != network.Connected {
		ai, err := l.routing.FindPeer(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("raftnet: dial %s: find peer: %w", p, err)
		}
		l.h.Peerstore().AddAddrs(p, ai.Addrs, peerstore.TempAddrTTL)
	}
	s, err := l.h.NewStream(ctx, p, l.proto)
	if err != nil {
		return nil, fmt.Errorf("raftnet: dial %s: %w", p, err)
	}
	if l.wrap != nil {
		return l.wrap(p, streamConn{s}), nil
	}
	return streamConn{s}, nil
}
