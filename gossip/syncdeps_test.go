package gossip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// reportOp signs a report op by key (seq i+1, report seq i+1).
func reportOp(t testing.TB, key crypto.PrivKey, i int) *Op {
	t.Helper()
	op, err := encodeOp(key, testNet, opDraft{Kind: KindReport, Seq: uint64(i + 1), Lamport: 1,
		Body: reportBody{Seq: uint64(i + 1), EntryHash: fmt.Sprintf("%064x", i+1), ProposalID: "",
			Success: true, Version: "1.0.1", PostStateSHA256: fmt.Sprintf("%064x", i+7)}})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// fillerOps signs reports by key until every one of the 256 buckets holds
// at least one, so a node holding them syncs every bucket by ID exchange.
func fillerOps(t testing.TB, key crypto.PrivKey) [][]byte {
	t.Helper()
	var out [][]byte
	covered := 0
	var seen [256]bool
	for i := 0; covered < 256; i++ {
		op := reportOp(t, key, i)
		if !seen[op.ID[0]] {
			seen[op.ID[0]] = true
			covered++
		}
		out = append(out, op.Raw)
	}
	return out
}

// TestSyncManyMissingDepsLinear: a node lacks proposals and the votes on
// them, and gets them in ID order, so most batches hold votes whose
// proposal is still missing. Missing deps are queued in O(1) and asked
// before anything else; ops waiting for them are retried as soon as they
// arrive. The request count is linear and no ID is asked twice.
//
//   - streamed: the node holds nothing; ops replies carry the ops, and
//     every missing dep is asked once with get: at most one get per ops
//     reply, and no more IDs than there are proposals.
//   - listed: the node holds reports in every bucket, so everything goes
//     through the ID exchange: every missing op is asked exactly once and
//     the get requests are exactly ceil(missing / batch). Skipped with
//     -short (signs ~1,600 reports).
func TestSyncManyMissingDepsLinear(t *testing.T) {
	for _, mode := range []string{"streamed", "listed"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "listed" && testing.Short() {
				t.Skip("signs ~1,600 reports")
			}
			const voters, proposals, batch = 8, 40, 32
			keys := make([]crypto.PrivKey, voters)
			for i := range keys {
				keys[i] = newKey(t)
			}
			rb := &rulesBox{}
			rb.set(makeRules(keys, 1, genesis.DefaultGovernance()))
			cfg := testConfig()
			cfg.SyncInterval = time.Hour
			cfg.MaxOpsPerReply = batch
			var filler [][]byte
			if mode == "listed" {
				filler = fillerOps(t, keys[0])
			}
			ops := genOpsParallel(t, keys, proposals)
			src := startNode(t, keys[0], memDS(), rb, cfg)
			dst := startNode(t, newKey(t), memDS(), rb, cfg)
			noAutoSync(dst)
			ingestAll(t, src, filler, 0)
			ingestAll(t, src, ops, proposals)
			ingestAll(t, dst, filler, 0)
			if err := dst.h.Connect(context.Background(), peer.AddrInfo{ID: src.id, Addrs: src.h.Addrs()}); err != nil {
				t.Fatal(err)
			}
			ss, err := dst.svc.runSync(context.Background(), src.id)
			if err != nil {
				t.Fatal(err)
			}
			missing := len(ops)
			t.Logf("requests %v, IDs asked with get %d", ss.requests, ss.getIDs)
			if ss.added != missing {
				t.Fatalf("one session added %d of %d ops", ss.added, missing)
			}
			sameSets(t, src, dst)
			batches := (missing + batch - 1) / batch
			if mode == "streamed" {
				if ss.requests[reqOps] != batches || ss.requests[reqIDs] != 0 {
					t.Fatalf("requests %v, want %d ops requests", ss.requests, batches)
				}
				if ss.requests[reqGet] > ss.requests[reqOps] || ss.getIDs > proposals {
					t.Fatalf("%d get requests for %d IDs (at most %d and %d)", ss.requests[reqGet], ss.getIDs, ss.requests[reqOps], proposals)
				}
				return
			}
			if ss.getIDs != missing {
				t.Fatalf("asked for %d IDs with get, want each of the %d missing ops once", ss.getIDs, missing)
			}
			if ss.requests[reqGet] != batches || ss.requests[reqIDs] != 1 || ss.requests[reqOps] != 0 {
				t.Fatalf("requests %v, want %d get and 1 ids", ss.requests, batches)
			}
		})
	}
}

// BenchmarkIngestBatchDepsLast: one sync reply of N ops where every vote
// comes before the proposal it depends on (the worst order). Ops waiting
// in the batch are indexed by dep, so the cost per op stays flat as N
// grows (ns/op-ingested); a retry-the-whole-batch loop grows with the
// dependency depth of the batch.
func BenchmarkIngestBatchDepsLast(b *testing.B) {
	for _, voters := range []int{4, 16, 64} {
		const proposals = 16
		keys := make([]crypto.PrivKey, voters)
		for i := range keys {
			keys[i] = newKey(b)
		}
		rb := &rulesBox{}
		rb.set(makeRules(keys, 1, genesis.DefaultGovernance()))
		ops := genOpsParallel(b, keys, proposals)
		batch := append(append([][]byte(nil), ops[proposals:]...), ops[:proposals]...)
		cfg := testConfig()
		cfg.SyncInterval = time.Hour
		b.Run(fmt.Sprintf("N=%d", len(batch)), func(b *testing.B) {
			var d time.Duration
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				n := startNode(b, newKey(b), memDS(), rb, cfg)
				b.StartTimer()
				start := time.Now()
				ss := newSession(context.Background(), n.svc, "bench", nil, nil)
				err := ss.ingest(batch)
				d += time.Since(start)
				if err != nil || ss.added != len(batch) || ss.nWaiting != 0 || ss.bad != 0 {
					b.Fatalf("added %d of %d, waiting %d, bad %d, err %v", ss.added, len(batch), ss.nWaiting, ss.bad, err)
				}
				b.StopTimer()
				n.stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N*len(batch)), "ns/op-ingested")
		})
	}
}
