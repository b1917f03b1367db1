package genesis

import (
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Devnet builds a development genesis for the given nodes: the first
// validators of them validate, every node has reputation 10 and an entry in
// global.nodes, and governance uses votingPeriod seconds with early approval.
func Devnet(name string, nodes []peer.ID, validators int, votingPeriod int64) (*Genesis, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("genesis: devnet needs at least one node")
	}
	if validators < 1 || validators > len(nodes) {
		return nil, fmt.Errorf("genesis: devnet with %d nodes cannot have %d validators", len(nodes), validators)
	}
	g := &Genesis{
		Name:       name,
		Version:    "1.0.0",
		Reputation: map[string]float64{},
		Governance: DefaultGovernance(),
	}
	g.Governance.VotingPeriodSeconds = votingPeriod
	members := map[string]any{}
	for i, id := range nodes {
		s := id.String()
		if i < validators {
			g.Validators = append(g.Validators, s)
		}
		g.Reputation[s] = 10
		members[s] = map[string]any{"joined": "genesis"}
	}
	state, err := json.Marshal(map[string]any{"global": map[string]any{"nodes": members}})
	if err != nil {
		return nil, err
	}
	g.State = state
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// NewDevnetKeys makes n fresh Ed25519 identities for a development
// network (simnet, the simulated network, tests) and their peer IDs, in
// the same order: pass the IDs to Devnet.
func NewDevnetKeys(n int) ([]crypto.PrivKey, []peer.ID, error) {
	keys := make([]crypto.PrivKey, n)
	ids := make([]peer.ID, n)
	for i := range keys {
		var err error
		if keys[i], _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
			return nil, nil, fmt.Errorf("genesis: devnet key: %w", err)
		}
		if ids[i], err = peer.IDFromPrivateKey(keys[i]); err != nil {
			return nil, nil, fmt.Errorf("genesis: devnet key: %w", err)
		}
	}
	return keys, ids, nil
}
