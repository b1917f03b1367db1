package node

import (
	"testing"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
)

func TestEntryHashAgrees(t *testing.T) {
	g := gossip.Entry{Seq: 2, ProposalID: "upgrade_x", Version: "1.2.0", PackageURL: "ipfs://Qm", PackageHash: "sha256:" + "ab", PackageSize: 10, PrevEntryHash: "cd"}
	r := raftnet.Entry(g)
	if g.Hash() != r.Hash() {
		t.Fatalf("gossip %s raft %s", g.Hash(), r.Hash())
	}
}
