//go:build synapsedeps

// Package deps pins the chosen stack while the packages that use it are
// being written on separate branches. It is removed once every dependency
// is imported by real code.
package deps

import (
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-wal"
	_ "github.com/ipfs/boxo/bitswap"
	_ "github.com/ipfs/boxo/blockservice"
	_ "github.com/ipfs/boxo/blockstore"
	_ "github.com/ipfs/boxo/ipld/merkledag"
	_ "github.com/ipfs/boxo/ipld/unixfs/importer"
	_ "github.com/ipfs/boxo/ipld/unixfs/io"
	_ "github.com/ipfs/go-cid"
	_ "github.com/ipfs/go-datastore"
	_ "github.com/ipfs/go-ds-badger"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-gostream"
	_ "github.com/libp2p/go-libp2p-kad-dht"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	_ "github.com/libp2p/go-libp2p/p2p/net/mock"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/tetratelabs/wazero"
)
