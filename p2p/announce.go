package p2p

import (
	"fmt"
	"net"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// addrsFactory rewrites the addresses the host announces (identify, signed
// peer records, the DHT) from Config.Announce and Config.NoAnnounce.
type addrsFactory struct {
	announce []ma.Multiaddr
	drop     []ma.Multiaddr
	ranges   []*net.IPNet
}

// newAddrsFactory parses announce and noAnnounce. It returns nil (libp2p's
// default factory) when both are empty.
func newAddrsFactory(announce, noAnnounce []string) (*addrsFactory, error) {
	if len(announce) == 0 && len(noAnnounce) == 0 {
		return nil, nil
	}
	f := &addrsFactory{}
	for _, s := range announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: announce: %q: %v", ErrInvalidConfig, s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			return nil, fmt.Errorf("%w: announce: %q: leave out /p2p/ (the node adds its own ID)", ErrInvalidConfig, s)
		}
		f.announce = append(f.announce, a)
	}
	for _, s := range noAnnounce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: no_announce: %q: %v", ErrInvalidConfig, s, err)
		}
		if n, ok, err := ipcidr(a); err != nil {
			return nil, fmt.Errorf("%w: no_announce: %q: %v", ErrInvalidConfig, s, err)
		} else if ok {
			f.ranges = append(f.ranges, n)
			continue
		}
		f.drop = append(f.drop, a)
	}
	return f, nil
}

// ipcidr reads an address range written /ip4/<ip>/ipcidr/<bits> (or ip6);
// ok is false for any other multiaddr.
func ipcidr(a ma.Multiaddr) (n *net.IPNet, ok bool, err error) {
	if len(a) != 2 || a[1].Protocol().Code != ma.P_IPCIDR {
		return nil, false, nil
	}
	var ip net.IP
	bits := 0
	switch a[0].Protocol().Code {
	case ma.P_IP4:
		ip, bits = net.IP(a[0].RawValue()).To4(), 32
	case ma.P_IP6:
		ip, bits = net.IP(a[0].RawValue()), 128
	default:
		return nil, false, fmt.Errorf("ipcidr needs an /ip4 or /ip6 address before it")
	}
	ones, err := strconv.Atoi(a[1].Value())
	if err != nil || ones < 0 || ones > bits {
		return nil, false, fmt.Errorf("prefix length %q out of range 0-%d", a[1].Value(), bits)
	}
	mask := net.CIDRMask(ones, bits)
	return &net.IPNet{IP: ip.Mask(mask), Mask: mask}, true, nil
}

// apply is the libp2p AddrsFactory: with Announce set it keeps only the
// announced addresses and the relay (/p2p-circuit) addresses libp2p found,
// then it drops what NoAnnounce names.
func (f *addrsFactory) apply(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	if len(f.announce) > 0 {
		out = append(out, f.announce...)
		for _, a := range addrs {
			if isRelayed(a) {
				out = append(out, a)
			}
		}
	} else {
		out = append(out, addrs...)
	}
	kept := out[:0]
	for _, a := range out {
		if !f.dropped(a) {
			kept = append(kept, a)
		}
	}
	return ma.Unique(kept)
}

func (f *addrsFactory) dropped(a ma.Multiaddr) bool {
	for _, d := range f.drop {
		if a.Equal(d) {
			return true
		}
	}
	if len(f.ranges) == 0 {
		return false
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return false
	}
	for _, n := range f.ranges {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// isRelayed reports whether a is a relay (/p2p-circuit) address.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
