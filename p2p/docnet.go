//go:build synapse_docnet

package p2p

import (
	"net"
	"slices"

	manet "github.com/multiformats/go-multiaddr/net"
)

// docnetPublic is true in binaries built with the synapse_docnet tag.
//
// The NAT tests (nattest/) build real NATs out of Linux network namespaces
// and may only use the documentation ranges 192.0.2.0/24, 198.51.100.0/24
// and 203.0.113.0/24. go-multiaddr counts all three as unroutable, and
// libp2p runs AutoNAT, relay reservations and hole punching only for
// public addresses, so in a namespace nothing would ever be public. The
// tag makes 203.0.113.0/24 count as public — it plays the internet in the
// tests — and leaves the other two unroutable, like the home networks
// behind each NAT. A normal build never contains this file.
const docnetPublic = true

func init() {
	_, internet, _ := net.ParseCIDR("203.0.113.0/24")
	manet.Unroutable4 = slices.DeleteFunc(slices.Clone(manet.Unroutable4), func(n *net.IPNet) bool {
		return n.String() == internet.String()
	})
}
