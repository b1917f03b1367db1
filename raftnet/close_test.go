package raftnet

import (
	"testing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle/lifecycletest"
)

// TestCloseRule: Close is idempotent, concurrent-safe and stops waiting at
// ctx's end (internal/lifecycle).
func TestCloseRule(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T) *Service {
		return newCluster(t, 1, 1).nodes[0].svc
	}, func(_ *testing.T, s *Service) func() {
		s.wg.Add(1) // a loop that has not stopped yet
		return s.wg.Done
	})
}
