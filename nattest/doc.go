// Package nattest holds the NAT traversal tests: real synapse-p2p daemons
// in Linux network namespaces, two of them behind NATs made with iptables
// (MASQUERADE), joining through a public bootstrap node by AutoNAT, circuit
// relay v2 and DCUtR hole punching, then running a whole upgrade. The
// tests need root; docs/nat.md explains the topology and how to build it
// by hand. The package has no code outside its tests.
package nattest
