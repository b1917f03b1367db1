package simtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// memNet is a simulated network of connections that carry libp2p streams
// natively: the Streams choice of Config. Each node has a transport whose
// connections and streams are in-memory queues; the swarm, the resource
// manager and the connection gater see every dial and connection as they
// do over TCP or QUIC, and every protocol runs unchanged on its streams.
// What is not there: a security handshake (the harness knows each
// listener's peer ID and key, so a dial to the wrong peer fails; every op
// is still signed and verified by the nodes) and a multiplexer's framing.
//
// The queues model what a simulated WAN needs and no more: each node has
// an uplink and a downlink of BitsPerSecond (a write is serialised on the
// sender's uplink, crosses the pair's one-way latency, and is serialised
// on the receiver's downlink when it arrives), a dial takes one round trip,
// and a sender may queue sendBuffer bytes on its uplink before Write
// blocks, as a socket's send buffer does. There is no loss, no reordering
// and no congestion control: TCP's would only slow the story down, not
// change what the nodes do. A stream opens at once at the other end; its
// bytes, its half-close and its reset arrive with the latency.
//
// Why it exists beside x/simlibp2p's QUIC: every gossip message there is
// QUIC packets through one router goroutine, acknowledgement packets back,
// and a 1.5 KiB frame buffer per message awaiting acknowledgement; at 1000
// nodes that was a third of the CPU and over a gigabyte of live heap
// (docs/benchmarks.md). TLS and yamux over in-memory pipes (tried first)
// cost two goroutine hand-offs per message and three goroutines per
// connection. A write here is one copy into the reader's queue.
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

// backlog is how far ahead of now the access link of ip is booked.
func (n *memNet) backlog(ip net.IP) (up, down time.Duration) {
	l := n.link([4]byte(ip.To4()))
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	return max(0, l.upFree.Sub(now)), max(0, l.downFree.Sub(now))
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
func (n *memNet) transport(ip net.IP) any {
	return func(key crypto.PrivKey, rm network.ResourceManager, gater connmgr.ConnectionGater) (transport.Transport, error) {
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, err
		}
		return &memTransport{net: n, ip: [4]byte(ip.To4()), id: id, pub: key.GetPublic(), rcmgr: rm, gater: gater}, nil
	}
}

type memTransport struct {
	net   *memNet
	ip    [4]byte
	id    peer.ID
	pub   crypto.PubKey
	rcmgr network.ResourceManager
	gater connmgr.ConnectionGater // may be nil
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

// Dial connects to the listener at raddr after one round trip.
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

func (t *memTransport) dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID, scope network.ConnManagementScope) (*memConn, error) {
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
	n.nextPort[t.ip]++
	local := &net.TCPAddr{IP: net.IP(t.ip[:]), Port: 32768 + n.nextPort[t.ip]%28000}
	n.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * n.oneWay(t.ip, rip)):
	}
	n.mu.Lock()
	l := n.listeners[remote.String()]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: syscall.ECONNREFUSED}
	}
	if l.t.id != p {
		return nil, fmt.Errorf("simtest: dialled %s at %s, which is %s", p, raddr, l.t.id)
	}
	mine, theirs, err := newConnPair(t, l.t, local, remote)
	if err != nil {
		return nil, err
	}
	if t.gater != nil && !t.gater.InterceptSecured(network.DirOutbound, p, mine) {
		mine.Close()
		return nil, fmt.Errorf("simtest: gater refused the connection to %s", p)
	}
	select {
	case l.backlog <- theirs:
	case <-l.done:
		mine.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: syscall.ECONNREFUSED}
	case <-ctx.Done():
		mine.Close()
		return nil, ctx.Err()
	}
	// From here the connection ends the scope (Close); before, Dial does
	// on the error. Closed already by the listener: end it here.
	mine.mu.Lock()
	closed := mine.streams == nil
	if !closed {
		mine.scope = scope
	}
	mine.mu.Unlock()
	if closed {
		return nil, errConnClosed
	}
	return mine, nil
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
	l := &memListener{t: t, addr: a, backlog: make(chan *memConn, 128), done: make(chan struct{})}
	if l.maddr, err = manet.FromNetAddr(a); err != nil {
		return nil, err
	}
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.listeners[a.String()] != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: a, Err: syscall.EADDRINUSE}
	}
	t.net.listeners[a.String()] = l
	return l, nil
}

type memListener struct {
	t       *memTransport
	addr    *net.TCPAddr
	maddr   ma.Multiaddr
	backlog chan *memConn
	once    sync.Once
	done    chan struct{}
}

// Accept returns the next connection the resource manager and the gater
// admit; the others are closed, which the dialling end sees as a closed
// connection.
func (l *memListener) Accept() (transport.CapableConn, error) {
	for {
		var c *memConn
		select {
		case c = <-l.backlog:
		case <-l.done:
			return nil, transport.ErrListenerClosed
		}
		if err := l.admit(c); err != nil {
			c.Close()
			continue
		}
		return c, nil
	}
}

func (l *memListener) admit(c *memConn) error {
	t := l.t
	if t.gater != nil && !t.gater.InterceptAccept(c) {
		return errors.New("gater refused")
	}
	scope, err := t.rcmgr.OpenConnection(network.DirInbound, true, c.remoteMA)
	if err != nil {
		return err
	}
	if t.gater != nil && !t.gater.InterceptSecured(network.DirInbound, c.remote, c) {
		scope.Done()
		return errors.New("gater refused")
	}
	if err := scope.SetPeer(c.remote); err != nil {
		scope.Done()
		return err
	}
	c.mu.Lock()
	c.scope = scope
	c.mu.Unlock()
	return nil
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		n := l.t.net
		n.mu.Lock()
		if n.listeners[l.addr.String()] == l {
			delete(n.listeners, l.addr.String())
		}
		n.mu.Unlock()
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

// memConn is one end of a simulated connection between two nodes.
type memConn struct {
	t                 *memTransport
	other             *memConn
	remote            peer.ID
	remotePub         crypto.PubKey
	localMA, remoteMA ma.Multiaddr
	link              *memLink // this node's access link
	latency           time.Duration
	accept            chan *memStream
	closed            chan struct{}
	once              sync.Once

	mu      sync.Mutex
	scope   network.ConnManagementScope
	streams map[*memStream]struct{}
}

var _ transport.CapableConn = (*memConn)(nil)

func newConnPair(a, b *memTransport, la, lb *net.TCPAddr) (*memConn, *memConn, error) {
	ma1, err := manet.FromNetAddr(la)
	if err != nil {
		return nil, nil, err
	}
	ma2, err := manet.FromNetAddr(lb)
	if err != nil {
		return nil, nil, err
	}
	lat := a.net.oneWay(a.ip, b.ip)
	mk := func(t *memTransport, remote *memTransport, local, rem ma.Multiaddr) *memConn {
		return &memConn{
			t: t, remote: remote.id, remotePub: remote.pub, localMA: local, remoteMA: rem,
			link: t.net.link(t.ip), latency: lat,
			accept: make(chan *memStream, 256), closed: make(chan struct{}),
			streams: map[*memStream]struct{}{},
		}
	}
	ca, cb := mk(a, b, ma1, ma2), mk(b, a, ma2, ma1)
	ca.other, cb.other = cb, ca
	return ca, cb, nil
}

var errConnClosed = errors.New("simtest: connection closed")

// OpenStream opens a stream; the other end can accept it at once, its
// bytes arrive with the latency.
func (c *memConn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	if c.IsClosed() {
		return nil, errConnClosed
	}
	ab, ba := newFlow(), newFlow()
	mine := &memStream{conn: c, in: ba, out: ab, done: make(chan struct{})}
	theirs := &memStream{conn: c.other, in: ab, out: ba, done: make(chan struct{})}
	if !c.track(mine) || !c.other.track(theirs) {
		mine.Reset()
		return nil, errConnClosed
	}
	select {
	case c.other.accept <- theirs:
		return mine, nil
	case <-c.other.closed:
	case <-c.closed:
	case <-ctx.Done():
		mine.Reset()
		theirs.Reset()
		return nil, ctx.Err()
	}
	mine.Reset()
	return nil, errConnClosed
}

func (c *memConn) track(s *memStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		return false
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *memConn) untrack(s *memStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.streams, s)
}

func (c *memConn) AcceptStream() (network.MuxedStream, error) {
	select {
	case s := <-c.accept:
		return s, nil
	case <-c.closed:
		return nil, errConnClosed
	}
}

// Close closes both ends and resets their streams.
func (c *memConn) Close() error {
	c.closeEnd()
	c.other.closeEnd()
	return nil
}

func (c *memConn) closeEnd() {
	c.once.Do(func() {
		close(c.closed)
		c.mu.Lock()
		streams := c.streams
		c.streams = nil
		scope := c.scope
		c.scope = nil
		c.mu.Unlock()
		for s := range streams {
			s.Reset()
		}
		if scope != nil {
			scope.Done()
		}
	})
}

func (c *memConn) CloseWithError(network.ConnErrorCode) error { return c.Close() }

func (c *memConn) IsClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *memConn) As(any) bool                    { return false }
func (c *memConn) LocalPeer() peer.ID             { return c.t.id }
func (c *memConn) RemotePeer() peer.ID            { return c.remote }
func (c *memConn) RemotePublicKey() crypto.PubKey { return c.remotePub }
func (c *memConn) LocalMultiaddr() ma.Multiaddr   { return c.localMA }
func (c *memConn) RemoteMultiaddr() ma.Multiaddr  { return c.remoteMA }
func (c *memConn) Transport() transport.Transport { return c.t }

func (c *memConn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: "simulated streams"}
}

func (c *memConn) Scope() network.ConnScope {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scope == nil {
		return &network.NullScope{}
	}
	return c.scope
}

// flow is one direction of a stream: what one end wrote and the other has
// not read yet, each write stamped with when it arrives.
type flow struct {
	mu       sync.Mutex
	chunks   []chunk
	last     time.Time // arrival of the latest chunk
	eof      time.Time // when the writer's close arrives (zero: open)
	gone     bool      // the reader closed: writes fail
	reset    bool      // either end reset the stream
	rdl, wdl time.Time // the reader's and writer's deadlines
	// readable and writable (capacity 1) wake a waiting reader (a write,
	// the writer's close, a reset, a new read deadline) and a writer
	// waiting for its send buffer (the reader's close, a reset, a new
	// write deadline).
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

// memStream is one end of a stream of a memConn.
type memStream struct {
	conn    *memConn
	in, out *flow
	once    sync.Once
	done    chan struct{} // this end closed or reset
}

var _ network.MuxedStream = (*memStream)(nil)

var errStreamClosed = errors.New("simtest: stream closed")

// wakeTick is the grid on which waiting readers and writers wake. The
// arrival and link times stay exact (a wake-up late by less than a tick
// reads everything that arrived by then); only the wake-ups are rounded, so
// that the many goroutines of a large network wake in batches at the same
// instants. With exact times nearly every chunk arrived at an instant of
// its own, and the bubble had to go idle and advance the clock once per
// chunk: millions of times in a 1000-node vote, on one P at a time.
const wakeTick = time.Millisecond

// onTick rounds t up to the wake grid. Bubble time starts at midnight, on
// the grid.
func onTick(t time.Time) time.Time {
	if r := t.Truncate(wakeTick); r.Before(t) {
		return r.Add(wakeTick)
	}
	return t
}

// wait blocks until changed fires, until (rounded up to the wake grid), the
// deadline dl, or this end's close.
//
// A new timer each wait, stopped after: reusing one timer per stream with
// Reset made the bubble's timer heap re-sort itself (runtime timers.adjust)
// for a quarter of a 1000-node simulation's CPU.
func (s *memStream) wait(changed chan struct{}, until, dl time.Time) error {
	wake := until
	if !dl.IsZero() && (wake.IsZero() || dl.Before(wake)) {
		wake = dl
	}
	var timer <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(onTick(wake)))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-changed:
	case <-timer:
	case <-s.done:
		return errStreamClosed
	}
	if !dl.IsZero() && !time.Now().Before(dl) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (s *memStream) Read(b []byte) (int, error) {
	f, link, net := s.in, s.conn.link, s.conn.t.net
	for {
		f.mu.Lock()
		if f.reset {
			f.mu.Unlock()
			return 0, network.ErrReset
		}
		if f.gone {
			f.mu.Unlock()
			return 0, errStreamClosed
		}
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
				link.mu.Lock()
				ch.at = later(ch.at, link.downFree.Add(net.txTime(len(ch.b))))
				link.downFree = ch.at
				link.mu.Unlock()
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
		case len(f.chunks) == 0 && !f.eof.IsZero() && !f.eof.After(now):
			f.mu.Unlock()
			return 0, io.EOF
		}
		until := f.eof
		if len(f.chunks) > 0 {
			until = f.chunks[0].at
		}
		dl := f.rdl
		f.mu.Unlock()
		if err := s.wait(f.readable, until, dl); err != nil {
			return 0, err
		}
	}
}

func (s *memStream) Write(b []byte) (int, error) {
	f, c := s.out, s.conn
	if err := s.writable(); err != nil {
		return 0, err
	}
	// Take this write's turn on the uplink now, then block until no more
	// than a send buffer's worth is ahead of it, as a socket write does.
	// Taking the turn first keeps the writers of one node in order: when
	// they re-checked the backlog after each wait instead, every waiting
	// writer woke at the same instant, one went, the others slept again —
	// at 1000 nodes that loop was 40 % of the CPU.
	net := c.t.net
	tx := net.txTime(len(b))
	c.link.mu.Lock()
	start := later(time.Now(), c.link.upFree)
	c.link.upFree = start.Add(tx)
	c.link.mu.Unlock()
	for until := start.Add(-net.txTime(sendBuffer)); time.Now().Before(until); {
		f.mu.Lock()
		dl := f.wdl
		f.mu.Unlock()
		if err := s.wait(f.writable, until, dl); err != nil {
			return 0, err
		}
		if err := s.writable(); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reset || f.gone {
		return 0, network.ErrReset
	}
	f.chunks = append(f.chunks, chunk{b: append([]byte(nil), b...), at: later(start.Add(tx+c.latency), f.last)})
	f.last = f.chunks[len(f.chunks)-1].at
	poke(f.readable)
	return len(b), nil
}

// writable reports why this end cannot write, if it cannot.
func (s *memStream) writable() error {
	f := s.out
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.reset:
		return network.ErrReset
	case !f.eof.IsZero(): // this end closed for writing
		return errStreamClosed
	case f.gone:
		return network.ErrReset
	}
	return nil
}

// CloseWrite sends EOF: the other end reads it after the bytes written
// before, with the latency.
func (s *memStream) CloseWrite() error {
	f := s.out
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.eof.IsZero() {
		f.eof = later(time.Now().Add(s.conn.latency), f.last)
		poke(f.readable)
	}
	return nil
}

// CloseRead discards what arrives from now on; the other end's writes fail.
func (s *memStream) CloseRead() error {
	f := s.in
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = true
	f.chunks = nil
	poke(f.writable)
	poke(f.readable)
	return nil
}

func (s *memStream) Close() error {
	s.CloseWrite()
	s.CloseRead()
	s.end()
	return nil
}

// Reset aborts both directions at both ends.
func (s *memStream) Reset() error {
	for _, f := range []*flow{s.in, s.out} {
		f.mu.Lock()
		f.reset = true
		f.chunks = nil
		poke(f.readable)
		poke(f.writable)
		f.mu.Unlock()
	}
	s.end()
	return nil
}

func (s *memStream) ResetWithError(network.StreamErrorCode) error { return s.Reset() }

func (s *memStream) end() {
	s.once.Do(func() {
		close(s.done)
		s.conn.untrack(s)
	})
}

func (s *memStream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *memStream) SetReadDeadline(t time.Time) error {
	s.in.mu.Lock()
	s.in.rdl = t
	poke(s.in.readable)
	s.in.mu.Unlock()
	return nil
}

func (s *memStream) SetWriteDeadline(t time.Time) error {
	s.out.mu.Lock()
	s.out.wdl = t
	poke(s.out.writable)
	s.out.mu.Unlock()
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
