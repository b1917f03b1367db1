package upgrade

import (
	"context"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle/lifecycletest"
)

// TestCloseRule: Close is idempotent, concurrent-safe and stops waiting at
// ctx's end (internal/lifecycle); a call running when Close starts holds it.
func TestCloseRule(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T) *Manager {
		return newManager(t, "", nil, Deps{})
	}, func(t *testing.T, m *Manager) func() {
		_, done, err := m.begin(context.Background()) // a running call
		if err != nil {
			t.Fatal(err)
		}
		return done
	})
}
