package node

import (
	"context"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle/lifecycletest"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// TestCloseRule: a started node follows the Close rule of its components
// (internal/lifecycle): idempotent, concurrent-safe, and a Close whose ctx
// ends while a component still stops returns ctx's error.
func TestCloseRule(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T) *Node {
		cfg := DefaultConfig(t.TempDir())
		cfg.P2P = p2p.LoopbackConfig()
		cfg.API.Addr = "127.0.0.1:0"
		if _, err := Init(cfg, ""); err != nil {
			t.Fatal(err)
		}
		n, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n
	}, func(_ *testing.T, n *Node) func() {
		// A component that is still stopping (registered last, so it
		// stops first).
		held := make(chan struct{})
		n.closers = append(n.closers, func(ctx context.Context) error {
			return lifecycle.Wait(ctx, "held component", func() { <-held })
		})
		return func() { close(held) }
	})
}
