//go:build !synapse_docnet

package p2p

// docnetPublic is true only in binaries built with the synapse_docnet tag,
// where 203.0.113.0/24 counts as a public address (p2p/docnet.go).
const docnetPublic = false
