package simtest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// memPair is a connection between two nodes whose one-way latency is 40 ms
// on 8 Mbit/s links (1 KB takes 1 ms on a link).
func memPair(t *testing.T) (*memNet, *memConn, *memConn) {
	t.Helper()
	ips := [][4]byte{{198, 51, 100, 1}, {198, 51, 100, 2}}
	n := newMemNet(func(a, b int) time.Duration { return 40 * time.Millisecond }, 8_000_000, addrIndex{ips[0]: 0, ips[1]: 1})
	a := &net.TCPAddr{IP: net.IP(ips[0][:]), Port: 1}
	b := &net.TCPAddr{IP: net.IP(ips[1][:]), Port: 2}
	ca, cb := n.pipe(a, b, n.link(ips[0]), n.link(ips[1]))
	return n, ca, cb
}

// A write arrives after the link's serialisation and the latency, in
// order; the reader sees nothing before.
func TestMemConnLatencyAndBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := memPair(t)
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
		total := 0
		for total < 10000 {
			n, err := b.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if got, want := time.Since(t0), 50*time.Millisecond; got != want {
			t.Fatalf("10 KB took %v, want %v", got, want)
		}
	})
}

// Deadlines interrupt a waiting Read; Close gives the other end EOF after
// what was written, and makes its writes fail.
func TestMemConnDeadlineAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := memPair(t)
		b.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if _, err := b.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past the deadline: %v", err)
		}
		b.SetReadDeadline(time.Time{})
		a.Write([]byte("last words"))
		a.Close()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "last words" {
			t.Fatalf("read %q, %v", got, err)
		}
		if _, err := b.Write([]byte("x")); err == nil {
			t.Fatal("write to a closed peer succeeded")
		}
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed end: %v", err)
		}
		b.Close()
	})
}

// A writer whose uplink holds more than the send buffer blocks until it
// drains, and a write deadline ends the wait.
func TestMemConnSendBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := memPair(t)
		defer a.Close()
		defer b.Close()
		big := make([]byte, 2*sendBuffer) // 2 × 262 ms on the uplink
		t0 := time.Now()
		a.Write(big) // queues: the buffer was empty
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write past the deadline: %v", err)
		}
		a.SetWriteDeadline(time.Time{})
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		// It waited until only a send buffer's worth was left on the link.
		if got, want := time.Since(t0), (*memNet).txTime(&memNet{bps: 8_000_000}, sendBuffer); got != want {
			t.Fatalf("write blocked %v, want %v", got, want)
		}
	})
}

// A near sender's write is not held up by a far sender's earlier one, and
// two senders share the receiver's downlink.
func TestMemConnDownlink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ips := [][4]byte{{198, 51, 100, 1}, {198, 51, 100, 2}, {198, 51, 100, 3}}
		far := func(a, b int) time.Duration {
			if a == 2 || b == 2 {
				return 140 * time.Millisecond
			}
			return 40 * time.Millisecond
		}
		n := newMemNet(far, 8_000_000, addrIndex{ips[0]: 0, ips[1]: 1, ips[2]: 2})
		addr := func(i int) *net.TCPAddr { return &net.TCPAddr{IP: net.IP(ips[i][:]), Port: 1} }
		s1, r1 := n.pipe(addr(1), addr(0), n.link(ips[1]), n.link(ips[0]))
		s2, r2 := n.pipe(addr(2), addr(0), n.link(ips[2]), n.link(ips[0]))
		t0 := time.Now()
		readAll := func(r *memConn, size int) time.Duration {
			buf := make([]byte, size)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Error(err)
			}
			return time.Since(t0)
		}
		// The far node writes first, the near one right after.
		s2.Write(make([]byte, 1000))
		s1.Write(make([]byte, 1000))
		if got := readAll(r1, 1000); got != 41*time.Millisecond {
			t.Fatalf("near write arrived after %v, want 41ms", got)
		}
		if got := readAll(r2, 1000); got != 141*time.Millisecond {
			t.Fatalf("far write arrived after %v, want 141ms", got)
		}

		// Two senders at 40 ms at once: their 10 KB arrive at 50 ms (10 ms
		// on each uplink), and the second waits 10 ms more for the
		// receiver's downlink.
		s4, r4 := n.pipe(addr(2), addr(0), n.link(ips[2]), n.link(ips[0]))
		s4.latency = 40 * time.Millisecond
		s1b, r1b := n.pipe(addr(1), addr(0), n.link(ips[1]), n.link(ips[0]))
		t0 = time.Now()
		s1b.Write(make([]byte, 10000))
		s4.Write(make([]byte, 10000))
		done := make(chan time.Duration, 2)
		go func() { done <- readAll(r1b, 10000) }()
		go func() { done <- readAll(r4, 10000) }()
		last := max(<-done, <-done)
		if last != 60*time.Millisecond {
			t.Fatalf("both arrived after %v, want 60ms (50 ms, then 10 ms behind the other on the downlink)", last)
		}
	})
}
