package simtest

import (
	"math"
	"net"
	"time"

	"github.com/marcopolo/simnet"
)

// Latency is a one-way latency model between nodes a and b (indexes); it
// must be symmetric and deterministic.
type Latency func(a, b int) time.Duration

// WANLatency is the default model: a fixed one-way latency per pair of
// nodes, between lo and hi with median med, skewed like the internet (many
// pairs near the median, a tail of far pairs): log-uniform from lo to med
// for half the pairs, from med to hi for the other half. The pair's value
// comes from a hash of the two indexes, so a run is reproducible.
func WANLatency(lo, med, hi time.Duration) Latency {
	return func(a, b int) time.Duration {
		if a > b {
			a, b = b, a
		}
		u := float64(splitmix64(uint64(a)<<32|uint64(b))>>11) / (1 << 53) // [0,1)
		var d float64
		if u < 0.5 {
			d = float64(lo) * math.Pow(float64(med)/float64(lo), u/0.5)
		} else {
			d = float64(med) * math.Pow(float64(hi)/float64(med), (u-0.5)/0.5)
		}
		return time.Duration(d)
	}
}

// DefaultLatency: one-way 20–150 ms between any two nodes, median 50 ms.
var DefaultLatency = WANLatency(20*time.Millisecond, 50*time.Millisecond, 150*time.Millisecond)

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// addrIndex maps the simulated UDP addresses back to node indexes for the
// router's per-packet latency function.
type addrIndex map[[4]byte]int

func (m addrIndex) of(a net.Addr) (int, bool) {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return 0, false
	}
	ip := u.IP.To4()
	if ip == nil {
		return 0, false
	}
	i, ok := m[[4]byte(ip)]
	return i, ok
}

// packetLatency adapts a Latency to the simulated router.
func (m addrIndex) packetLatency(l Latency) func(*simnet.Packet) time.Duration {
	return func(p *simnet.Packet) time.Duration {
		a, ok1 := m.of(p.From)
		b, ok2 := m.of(p.To)
		if !ok1 || !ok2 {
			return l(0, 0)
		}
		return l(a, b)
	}
}
