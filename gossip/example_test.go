package gossip_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
)

// A node runs one Service on its libp2p host: it proposes an upgrade,
// votes on it and reads the proposal's view. Here the node is the only
// key of the reputation map, so its approval carries the whole eligible
// weight and the proposal is approved early. Peers that join the topic
// (or sync with this node) receive both ops and derive the same view.
func ExampleService() {
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		panic(err)
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		panic(err)
	}
	defer h.Close()
	self, _ := peer.IDFromPrivateKey(key)
	rules := genesis.Rules{
		Version:    "1.0.0",
		Validators: []peer.ID{self},
		Reputation: map[peer.ID]float64{self: 10},
		Governance: genesis.Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true},
	}

	svc, err := gossip.New(ctx, gossip.DefaultConfig(), gossip.Deps{
		Host:      h,
		Key:       key,
		Datastore: dssync.MutexWrap(datastore.NewMapDatastore()),
		NetID:     "00000000deadbeef",
		Rules:     func() genesis.Rules { return rules },
	})
	if err != nil {
		panic(err)
	}
	defer svc.Close(context.Background())

	id, err := svc.PublishProposal(ctx, gossip.ProposalBody{
		Title:       "Raise the block size",
		Description: "Version 1.1.0 of the network program.",
		Version:     "1.1.0",
		PackageURL:  "https://example.org/upgrade-1.1.0.wasm",
		PackageHash: "sha256:" + strings.Repeat("ab", 32),
		PackageSize: 4096,
	})
	if err != nil {
		panic(err)
	}
	if err := svc.PublishVote(ctx, id, gossip.ChoiceApproval); err != nil {
		panic(err)
	}
	v, err := svc.Proposal(id, time.Now())
	if err != nil {
		panic(err)
	}
	fmt.Println("version:", v.Body.Version)
	fmt.Println("votes:", len(v.Votes))
	fmt.Println("status:", v.Status)
	// Output:
	// version: 1.1.0
	// votes: 1
	// status: approved
}
