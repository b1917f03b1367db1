package gossip

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle/lifecycletest"
)

// TestCloseRule: Close is idempotent, concurrent-safe and stops waiting at
// ctx's end (internal/lifecycle).
func TestCloseRule(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T) *Service {
		key := newKey(t)
		rb := &rulesBox{}
		rb.set(makeRules([]crypto.PrivKey{key}, 1, genesis.DefaultGovernance()))
		return startNode(t, key, memDS(), rb, testConfig()).svc
	}, func(_ *testing.T, s *Service) func() {
		s.wg.Add(1) // a goroutine that has not stopped yet
		return s.wg.Done
	})
}
