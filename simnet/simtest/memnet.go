package simtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// memNet is a simulated network of byte streams: the TransportStreams
// choice of Config. Each node has a TCP-like transport whose connections
// are in-memory pipes; everything above them is libp2p's own — the
// upgrader negotiates TLS and yamux on every connection, the resource
// manager and connection gater see every dial — so the node code runs as
// it does over TCP.
//
// The pipes model what a simulated WAN needs and no more: each node has an
// uplink and a downlink of BitsPerSecond (a write is serialised on the
// sender's uplink, crosses the pair's one-way latency, and is serialised
// on the receiver's downlink when it arrives), a dial takes one round trip before the
// handshake starts, and a sender may queue sendBuffer bytes on its uplink
// before Write blocks, as a socket's send buffer does. There is no loss,
// no reordering and no congestion control: TCP's would only slow the story
// down, not change what the nodes do.
//
// Why it exists beside x/simlibp2p's QUIC: every gossip message there is
// QUIC packets through one router goroutine, acknowledgement packets back,
// and a 1.5 KiB frame buffer per message awaiting acknowledgement; at 1000
// nodes that was a third of the CPU and over a gigabyte of live heap
// (docs/benchmarks.md). A write here is one copy into the reader's queue.
type memNet struct {
	latency Latency
	bps     int

	mu        sync.Mutex
	listeners map[string]*memListener // "ip:port"
	links     map[[4]byte]*memLink
	index     addrIndex
	nextPort  map[[4]byte]int
}

// sendBuffer is how many bytes a writer may have waiting for its uplink
// before Write blocks (a socket send buffer).
const sendBuffer = 256 << 10

func newMemNet(latency Latency, bps int, index addrIndex) *memNet {
	return &memNet{
		latency:   latency,
		bps:       bps,
		listeners: map[string]*memListener{},
		links:     map[[4]byte]*memLink{},
		index:     index,
		nextPort:  map[[4]byte]int{},
	}
}

// memLink is one node's access link.
type memLink struct {
	mu       sync.Mutex
	upFree   time.Time // when the uplink is next idle
	downFree time.Time // when the downlink is next idle
}

func (n *memNet) link(ip [4]byte) *memLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[ip]
	if l == nil {
		l = &memLink{}
		n.links[ip] = l
	}
	return l
}

// txTime is how long size bytes occupy a link.
func (n *memNet) txTime(size int) time.Duration {
	return time.Duration(int64(size) * 8 * int64(time.Second) / int64(n.bps))
}

func (n *memNet) oneWay(a, b [4]byte) time.Duration {
	i, ok1 := n.index[a]
	j, ok2 := n.index[b]
	if !ok1 || !ok2 {
		return n.latency(0, 0)
	}
	return n.latency(i, j)
}

// transport returns the libp2p transport constructor of the node at ip.
func (n *memNet) transport(ip net.IP) func(transport.Upgrader, network.ResourceManager) (transport.Transport, error) {
	return func(u transport.Upgrader, rm network.ResourceManager) (transport.Transport, error) {
		return &memTransport{net: n, ip: [4]byte(ip.To4()), upgrader: u, rcmgr: rm}, nil
	}
}

type memTransport struct {
	net      *memNet
	ip       [4]byte
	upgrader transport.Upgrader
	rcmgr    network.ResourceManager
}

func (t *memTransport) CanDial(a ma.Multiaddr) bool {
	_, err := tcpAddrOf(a)
	return err == nil
}

func (t *memTransport) Protocols() []int { return []int{ma.P_TCP} }
func (t *memTransport) Proxy() bool      { return false }
func (t *memTransport) String() string   { return "simulated streams" }

func tcpAddrOf(a ma.Multiaddr) (*net.TCPAddr, error) {
	na, err := manet.ToNetAddr(a)
	if err != nil {
		return nil, err
	}
	ta, ok := na.(*net.TCPAddr)
	if !ok || ta.IP.To4() == nil {
		return nil, fmt.Errorf("simtest: %s is not an IPv4 TCP address", a)
	}
	return ta, nil
}

// Dial connects to the listener at raddr after one round trip (the TCP
// handshake) and hands the connection to libp2p's upgrader.
func (t *memTransport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, true, raddr)
	if err != nil {
		return nil, err
	}
	c, err := t.dial(ctx, raddr, p, scope)
	if err != nil {
		scope.Done()
		return nil, err
	}
	return c, nil
}

func (t *memTransport) dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID, scope network.ConnManagementScope) (transport.CapableConn, error) {
	if err := scope.SetPeer(p); err != nil {
		return nil, err
	}
	remote, err := tcpAddrOf(raddr)
	if err != nil {
		return nil, err
	}
	rip := [4]byte(remote.IP.To4())
	n := t.net
	n.mu.Lock()
	l := n.listeners[remote.String()]
	n.nextPort[t.ip]++
	local := &net.TCPAddr{IP: net.IP(t.ip[:]), Port: 32768 + n.nextPort[t.ip]%28000}
	n.mu.Unlock()
	rtt := 2 * n.oneWay(t.ip, rip)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(rtt):
	}
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: syscall.ECONNREFUSED}
	}
	mine, theirs := n.pipe(local, remote, n.link(t.ip), n.link(rip))
	select {
	case l.backlog <- theirs:
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: syscall.ECONNREFUSED}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := manet.WrapNetConn(mine)
	if err != nil {
		mine.Close()
		return nil, err
	}
	return t.upgrader.Upgrade(ctx, t, c, network.DirOutbound, p, scope)
}

// Listen registers a listener at laddr (an IPv4 TCP address of this node).
func (t *memTransport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	a, err := tcpAddrOf(laddr)
	if err != nil {
		return nil, err
	}
	if [4]byte(a.IP.To4()) != t.ip || a.Port == 0 {
		return nil, fmt.Errorf("simtest: listen on %s: a node listens on its own address and a fixed port", laddr)
	}
	l := &memListener{net: t.net, addr: a, backlog: make(chan *memConn, 128), done: make(chan struct{})}
	if l.maddr, err = manet.FromNetAddr(a); err != nil {
		return nil, err
	}
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.listeners[a.String()] != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: a, Err: syscall.EADDRINUSE}
	}
	t.net.listeners[a.String()] = l
	return t.upgrader.UpgradeGatedMaListener(t, t.upgrader.GateMaListener(l)), nil
}

type memListener struct {
	net     *memNet
	addr    *net.TCPAddr
	maddr   ma.Multiaddr
	backlog chan *memConn
	once    sync.Once
	done    chan struct{}
}

func (l *memListener) Accept() (manet.Conn, error) {
	select {
	case c := <-l.backlog:
		return manet.WrapNetConn(c)
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		l.net.mu.Lock()
		if l.net.listeners[l.addr.String()] == l {
			delete(l.net.listeners, l.addr.String())
		}
		l.net.mu.Unlock()
		close(l.done)
		for {
			select {
			case c := <-l.backlog:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *memListener) Addr() net.Addr          { return l.addr }
func (l *memListener) Multiaddr() ma.Multiaddr { return l.maddr }

// pipe makes a connection between a (on link la) and b (on link lb): two
// ends sharing two one-way queues.
func (n *memNet) pipe(a, b *net.TCPAddr, la, lb *memLink) (*memConn, *memConn) {
	lat := n.oneWay([4]byte(a.IP.To4()), [4]byte(b.IP.To4()))
	ab, ba := newFlow(), newFlow()
	ca := &memConn{net: n, in: ba, out: ab, local: a, remote: b, link: la, latency: lat, done: make(chan struct{})}
	cb := &memConn{net: n, in: ab, out: ba, local: b, remote: a, link: lb, latency: lat, done: make(chan struct{})}
	return ca, cb
}

// flow is one direction of a connection: what one end wrote and the other
// has not read yet, each write stamped with when it arrives.
type flow struct {
	mu       sync.Mutex
	chunks   []chunk
	last     time.Time // arrival of the latest chunk
	eof      bool      // the writer closed: EOF after the queue
	gone     bool      // the reader closed: writes fail
	rdl, wdl time.Time // the reader's and writer's deadlines
	// readable and writable (capacity 1) wake a waiting reader (a write,
	// the writer's close, a new read deadline) and a writer waiting for
	// its send buffer (the reader's close, a new write deadline).
	readable, writable chan struct{}
}

// chunk is one write. at is when it arrives at the other node; once the
// reader has seen it arrive (charged), when it has crossed that node's
// downlink too.
type chunk struct {
	b       []byte
	at      time.Time
	charged bool
}

func newFlow() *flow {
	return &flow{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// memConn is one end of a simulated TCP connection.
type memConn struct {
	net           *memNet
	in, out       *flow
	local, remote *net.TCPAddr
	link          *memLink // this end's node's access link
	latency       time.Duration
	once          sync.Once
	done          chan struct{}
}

var errReset = &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}

// wait blocks until changed fires, until, the deadline dl, or the end's
// close.
func (c *memConn) wait(changed chan struct{}, until, dl time.Time) error {
	wake := until
	if !dl.IsZero() && (wake.IsZero() || dl.Before(wake)) {
		wake = dl
	}
	var timer <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(wake))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-changed:
	case <-timer:
	case <-c.done:
		return net.ErrClosed
	}
	if !dl.IsZero() && !time.Now().Before(dl) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (c *memConn) Read(b []byte) (int, error) {
	f := c.in
	for {
		select {
		case <-c.done:
			return 0, net.ErrClosed
		default:
		}
		f.mu.Lock()
		now := time.Now()
		n := 0
		for len(f.chunks) > 0 && n < len(b) {
			if ch := &f.chunks[0]; !ch.charged && !ch.at.After(now) {
				// It arrived: queue it on this node's downlink. Arrivals
				// are charged in the (virtual) time order in which readers
				// see them, which is arrival order for a waiting reader;
				// charging at write time would order them by when they
				// were sent, and a far peer's message would hold up a near
				// one's.
				c.link.mu.Lock()
				ch.at = later(ch.at, c.link.downFree.Add(c.net.txTime(len(ch.b))))
				c.link.downFree = ch.at
				c.link.mu.Unlock()
				ch.charged = true
			}
			if f.chunks[0].at.After(now) {
				break
			}
			k := copy(b[n:], f.chunks[0].b)
			n += k
			if k == len(f.chunks[0].b) {
				f.chunks[0] = chunk{}
				f.chunks = f.chunks[1:]
			} else {
				f.chunks[0].b = f.chunks[0].b[k:]
			}
		}
		if len(f.chunks) == 0 {
			f.chunks = nil // let the backing array go
		}
		switch {
		case n > 0 || len(b) == 0:
			f.mu.Unlock()
			return n, nil
		case f.eof && len(f.chunks) == 0:
			f.mu.Unlock()
			return 0, io.EOF
		}
		var until time.Time
		if len(f.chunks) > 0 {
			until = f.chunks[0].at
		}
		dl := f.rdl
		f.mu.Unlock()
		if err := c.wait(f.readable, until, dl); err != nil {
			return 0, err
		}
	}
}

func (c *memConn) Write(b []byte) (int, error) {
	f := c.out
	// Wait for room in the send buffer: the uplink's backlog.
	for {
		f.mu.Lock()
		gone, eof, dl := f.gone, f.eof, f.wdl
		f.mu.Unlock()
		switch {
		case eof: // this end closed
			return 0, net.ErrClosed
		case gone:
			return 0, errReset
		}
		c.link.mu.Lock()
		backlog := time.Until(c.link.upFree)
		c.link.mu.Unlock()
		if backlog <= c.net.txTime(sendBuffer) {
			break
		}
		if err := c.wait(f.writable, time.Now().Add(backlog-c.net.txTime(sendBuffer)), dl); err != nil {
			return 0, err
		}
	}
	now := time.Now()
	tx := c.net.txTime(len(b))
	c.link.mu.Lock()
	start := later(now, c.link.upFree)
	c.link.upFree = start.Add(tx)
	c.link.mu.Unlock()
	at := start.Add(tx + c.latency)

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return 0, errReset
	}
	at = later(at, f.last)
	f.last = at
	f.chunks = append(f.chunks, chunk{b: append([]byte(nil), b...), at: at})
	poke(f.readable)
	return len(b), nil
}

// Close ends both directions: the other end reads what was written, then
// EOF; its writes fail.
func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.out.mu.Lock()
		c.out.eof = true
		poke(c.out.readable)
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.gone = true
		c.in.chunks = nil
		poke(c.in.writable)
		c.in.mu.Unlock()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	c.in.rdl = t
	poke(c.in.readable)
	c.in.mu.Unlock()
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.out.mu.Lock()
	c.out.wdl = t
	poke(c.out.writable)
	c.out.mu.Unlock()
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
