package bitswap

import (
	"testing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle/lifecycletest"
)

// TestCloseRule: Close is idempotent, concurrent-safe and stops waiting at
// ctx's end (internal/lifecycle).
func TestCloseRule(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T) *Store {
		return newNode(t, nodeOpts{}).s
	}, func(_ *testing.T, s *Store) func() {
		s.wg.Add(1) // a reprovider that has not stopped yet
		return s.wg.Done
	})
}
