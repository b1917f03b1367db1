package simtest

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testIPs are three nodes' addresses.
var testIPs = [][4]byte{{198, 51, 100, 1}, {198, 51, 100, 2}, {198, 51, 100, 3}}

// memNodes builds a network of three nodes on 8 Mbit/s links (1 KB takes
// 1 ms on a link) with the one-way latency lat, and their transports.
func memNodes(t *testing.T, lat Latency) (*memNet, []*memTransport) {
	t.Helper()
	n := newMemNet(lat, 8_000_000, addrIndex{testIPs[0]: 0, testIPs[1]: 1, testIPs[2]: 2})
	var ts []*memTransport
	for _, ip := range testIPs {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(key)
		ts = append(ts, &memTransport{net: n, ip: ip, id: id, pub: key.GetPublic(), rcmgr: &network.NullResourceManager{}})
	}
	return n, ts
}

func tcpAddr(ip [4]byte, port int) *net.TCPAddr { return &net.TCPAddr{IP: net.IP(ip[:]), Port: port} }

// memStreamPair opens a stream from node i to node j on a new connection.
func memStreamPair(t *testing.T, ts []*memTransport, i, j int) (*memStream, *memStream) {
	t.Helper()
	ci, _, err := newConnPair(ts[i], ts[j], tcpAddr(testIPs[i], 1000), tcpAddr(testIPs[j], 2000))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ci.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ci.other.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	return s.(*memStream), r.(*memStream)
}

func flat(d time.Duration) Latency { return func(a, b int) time.Duration { return d } }

// A write arrives after the uplink's serialisation and the latency, in
// order; the reader sees nothing before.
func TestMemStreamLatencyAndBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ts := memNodes(t, flat(40*time.Millisecond))
		a, b := memStreamPair(t, ts, 0, 1)
		t0 := time.Now()
		msg := make([]byte, 1000) // 1 ms on either link
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := b.Read(buf)
		if err != nil || n != 1000 {
			t.Fatalf("read %d, %v", n, err)
		}
		if got, want := time.Since(t0), 41*time.Millisecond; got != want {
			t.Fatalf("arrived after %v, want %v (1 ms uplink + 40 ms)", got, want)
		}
		// Ten writes at once queue on the uplink: the last arrives 10 ms
		// after it started, plus the latency.
		t0 = time.Now()
		for range 10 {
			a.Write(msg)
		}
		if _, err := io.ReadFull(b, make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(t0), 50*time.Millisecond; got != want {
			t.Fatalf("10 KB took %v, want %v", got, want)
		}
	})
}

// Deadlines interrupt a waiting Read; CloseWrite gives the other end EOF
// after what was written; a reset reaches both ends; closing the
// connection resets its streams and ends AcceptStream.
func TestMemStreamCloseAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ts := memNodes(t, flat(40*time.Millisecond))
		a, b := memStreamPair(t, ts, 0, 1)
		b.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if _, err := b.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past the deadline: %v", err)
		}
		b.SetReadDeadline(time.Time{})
		t0 := time.Now()
		a.Write([]byte("last words"))
		a.CloseWrite()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "last words" {
			t.Fatalf("read %q, %v", got, err)
		}
		if time.Since(t0) < 40*time.Millisecond {
			t.Fatalf("EOF arrived after %v, before the latency", time.Since(t0))
		}
		// The half-closed end still reads what b writes back.
		b.Write([]byte("reply"))
		if got, err := io.ReadAll(io.LimitReader(a, 5)); err != nil || string(got) != "reply" {
			t.Fatalf("reply: %q, %v", got, err)
		}
		b.Reset()
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read on a reset stream: %v", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, network.ErrReset) {
			t.Fatalf("write on a reset stream: %v", err)
		}

		c, d := memStreamPair(t, ts, 0, 2)
		c.conn.Close()
		if _, err := d.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read on a stream of a closed connection: %v", err)
		}
		if _, err := d.conn.AcceptStream(); err == nil {
			t.Fatal("AcceptStream on a closed connection succeeded")
		}
		if _, err := d.conn.OpenStream(context.Background()); err == nil {
			t.Fatal("OpenStream on a closed connection succeeded")
		}
	})
}

// A writer whose uplink holds more than the send buffer blocks until it
// drains, and a write deadline ends the wait.
func TestMemStreamSendBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, ts := memNodes(t, flat(40*time.Millisecond))
		a, b := memStreamPair(t, ts, 0, 1)
		defer a.Close()
		defer b.Close()
		t0 := time.Now()
		a.Write(make([]byte, 2*sendBuffer)) // queues: the buffer was empty
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write past the deadline: %v", err)
		}
		a.SetWriteDeadline(time.Time{})
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		// It waited until only a send buffer's worth was ahead of it on the
		// link (the write that gave up at its deadline kept its turn: one
		// byte), and woke on the next tick of the wake grid.
		if got, want := time.Since(t0), onTick(t0.Add(n.txTime(sendBuffer)+n.txTime(1))).Sub(t0); got != want {
			t.Fatalf("write blocked %v, want %v", got, want)
		}
	})
}

// The backlog of a link is how far ahead of now it is booked: a write books
// the sender's uplink at once; once it is sent and read, nothing is.
func TestMemLinkBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, ts := memNodes(t, flat(40*time.Millisecond))
		a, b := memStreamPair(t, ts, 0, 1)
		defer a.Close()
		defer b.Close()
		msg := make([]byte, 100_000) // 100 ms on either link
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if up, down := n.backlog(testIPs[0][:]); up != n.txTime(len(msg)) || down != 0 {
			t.Fatalf("sender's backlog after the write: up %v down %v", up, down)
		}
		time.Sleep(140 * time.Millisecond) // serialised and across
		if up, _ := n.backlog(testIPs[0][:]); up != 0 {
			t.Fatalf("sender's uplink still booked %v after sending", up)
		}
		if _, err := io.ReadFull(b, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if _, down := n.backlog(testIPs[1][:]); down != 0 {
			t.Fatalf("receiver's downlink booked %v after it drained", down)
		}
	})
}

// A near sender's write is not held up by a far sender's earlier one, and
// two senders share the receiver's downlink.
func TestMemStreamDownlink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ts := memNodes(t, func(a, b int) time.Duration {
			if a == 2 || b == 2 {
				return 140 * time.Millisecond
			}
			return 40 * time.Millisecond
		})
		near, r1 := memStreamPair(t, ts, 1, 0)
		far, r2 := memStreamPair(t, ts, 2, 0)
		t0 := time.Now()
		readAll := func(r *memStream, size int) time.Duration {
			if _, err := io.ReadFull(r, make([]byte, size)); err != nil {
				t.Error(err)
			}
			return time.Since(t0)
		}
		far.Write(make([]byte, 1000))
		near.Write(make([]byte, 1000))
		if got := readAll(r1, 1000); got != 41*time.Millisecond {
			t.Fatalf("near write arrived after %v, want 41ms", got)
		}
		if got := readAll(r2, 1000); got != 141*time.Millisecond {
			t.Fatalf("far write arrived after %v, want 141ms", got)
		}

		// Two senders at 40 ms at once: their 10 KB arrive at 50 ms (10 ms
		// on each uplink), and the second waits 10 ms more for the
		// receiver's downlink.
		s1, r3 := memStreamPair(t, ts, 1, 0)
		s2, r4 := memStreamPair(t, ts, 2, 0)
		s2.conn.latency, s2.conn.other.latency = 40*time.Millisecond, 40*time.Millisecond
		t0 = time.Now()
		s1.Write(make([]byte, 10000))
		s2.Write(make([]byte, 10000))
		done := make(chan time.Duration, 2)
		go func() { done <- readAll(r3, 10000) }()
		go func() { done <- readAll(r4, 10000) }()
		if last := max(<-done, <-done); last != 60*time.Millisecond {
			t.Fatalf("both arrived after %v, want 60ms (50 ms, then 10 ms behind the other on the downlink)", last)
		}
	})
}

// Two libp2p hosts on the simulated network connect (one round trip),
// speak a protocol over a stream, and a dial that names another peer than
// the one listening fails.
func TestMemNetHosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(flat(30*time.Millisecond), 20_000_000, addrIndex{testIPs[0]: 0, testIPs[1]: 1, testIPs[2]: 2})
		mk := func(i int) host.Host {
			key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
			h, err := libp2p.New(libp2p.Identity(key), libp2p.NoTransports,
				libp2p.Transport(n.transport(net.IP(testIPs[i][:]))),
				libp2p.ListenAddrStrings("/ip4/"+net.IP(testIPs[i][:]).String()+"/tcp/4001"),
				libp2p.DisableIdentifyAddressDiscovery(), libp2p.DisableRelay(), libp2p.DisableMetrics())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			return h
		}
		a, b := mk(0), mk(1)
		b.SetStreamHandler("/echo", func(s network.Stream) {
			defer s.Close()
			io.Copy(s, s)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		other, _ := peer.IDFromPrivateKey(key)
		if err := a.Connect(ctx, peer.AddrInfo{ID: other, Addrs: b.Addrs()}); err == nil {
			t.Fatal("a dial of another peer at b's address connected")
		}
		a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
		t0 := time.Now()
		if _, err := a.Network().DialPeer(ctx, b.ID()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(t0); got != 60*time.Millisecond {
			t.Fatalf("connected after %v, want one round trip (60ms)", got)
		}
		s, err := a.NewStream(ctx, b.ID(), "/echo")
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("ping"))
		s.CloseWrite()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "ping" {
			t.Fatalf("echo %q, %v", got, err)
		}
		s.Close()
	})
}
