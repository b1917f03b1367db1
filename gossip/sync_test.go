package gossip

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// genOps signs proposals and every voter's vote on each (wire bytes,
// proposals first).
func genOps(t testing.TB, keys []crypto.PrivKey, proposals int) [][]byte {
	var out [][]byte
	var props []*Op
	for p := 0; p < proposals; p++ {
		body := testBody(p)
		op, err := encodeOp(keys[p%len(keys)], testNet, opDraft{Kind: KindProposal, Seq: uint64(100000 + p), TS: time.Unix(int64(p), 0),
			Body: proposalBody{Type: "code_upgrade", Title: body.Title, Description: body.Description, Version: body.Version,
				PackageURL: body.PackageURL, PackageHash: body.PackageHash, PackageSize: body.PackageSize}})
		if err != nil {
			t.Fatal(err)
		}
		props = append(props, op)
		out = append(out, op.Raw)
	}
	for v := range keys {
		for p, prop := range props {
			op, err := encodeOp(keys[v], testNet, opDraft{Kind: KindVote, Seq: uint64(p + 1), Deps: []OpID{prop.ID},
				Body: voteBody{ProposalID: proposalIDFor(prop), Choice: []string{ChoiceApproval, ChoiceRejection}[(v+p)%2]}})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, op.Raw)
		}
	}
	return out
}

// TestSyncCatchUp: one node syncs a few thousand missing ops from a peer,
// both from scratch (whole buckets) and when it already holds part of
// them (ID exchange for differing buckets), across several reply batches.
func TestSyncCatchUp(t *testing.T) {
	keys := make([]crypto.PrivKey, 12)
	for i := range keys {
		keys[i] = newKey(t)
	}
	rb := &rulesBox{}
	rb.set(makeRules(keys, 1, genesis.DefaultGovernance()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour // only on-connect sync
	cfg.MaxOpsPerReply = 64      // force many batches
	ops := genOps(t, keys, 40)
	src := startNode(t, keys[0], memDS(), rb, cfg)
	for _, raw := range ops {
		if err := src.svc.Ingest(raw); err != nil {
			t.Fatal(err)
		}
	}
	want := src.svc.OpCount()
	fresh := startNode(t, newKey(t), memDS(), rb, cfg)
	half := startNode(t, newKey(t), memDS(), rb, cfg)
	// half holds the proposals and every third vote, so every bucket
	// is partly known.
	for i, raw := range ops {
		if i < 40 || i%3 == 0 {
			if err := half.svc.Ingest(raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	connect(t, fresh, src)
	connect(t, half, src)
	for _, nd := range []*tnode{fresh, half} {
		testutil.WaitFor(t, 60*time.Second, "catch-up", func() bool { return nd.svc.OpCount() == want })
	}
	if fresh.svc.orphans.len() != 0 || half.svc.orphans.len() != 0 {
		t.Fatal("orphans left after catch-up")
	}
}
