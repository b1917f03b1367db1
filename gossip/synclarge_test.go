package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// genOpsParallel is genOps signed on every core: proposals proposals, then
// every key's vote on each.
func genOpsParallel(t testing.TB, keys []crypto.PrivKey, proposals int) [][]byte {
	t.Helper()
	props := make([]*Op, proposals)
	raws := signParallel(t, proposals, func(p int) ([]byte, error) {
		body := testBody(p)
		op, err := encodeOp(keys[p%len(keys)], testNet, opDraft{Kind: KindProposal, Seq: uint64(100000 + p), TS: time.Unix(int64(p), 0),
			Body: proposalBody{Type: "code_upgrade", Title: body.Title, Description: body.Description, Version: body.Version,
				PackageURL: body.PackageURL, PackageHash: body.PackageHash, PackageSize: body.PackageSize}})
		if err != nil {
			return nil, err
		}
		props[p] = op
		return op.Raw, nil
	})
	votes := signParallel(t, len(keys)*proposals, func(i int) ([]byte, error) {
		v, p := i/proposals, i%proposals
		op, err := encodeOp(keys[v], testNet, opDraft{Kind: KindVote, Seq: uint64(p + 1), Deps: []OpID{props[p].ID},
			Body: voteBody{ProposalID: proposalIDFor(props[p]), Choice: []string{ChoiceApproval, ChoiceRejection}[(v+p)%2]}})
		if err != nil {
			return nil, err
		}
		return op.Raw, nil
	})
	return append(raws, votes...)
}

// ingestAll adds ops to n, proposals (the first nprops) first, on every
// core.
func ingestAll(t testing.TB, n *tnode, ops [][]byte, nprops int) {
	t.Helper()
	add := func(raws [][]byte) {
		signParallel(t, len(raws), func(i int) ([]byte, error) { return nil, n.svc.Ingest(raws[i]) })
	}
	add(ops[:nprops])
	add(ops[nprops:])
}

// sameSets checks that dst holds exactly src's op set and no orphan.
func sameSets(t *testing.T, src, dst *tnode) {
	t.Helper()
	src.svc.mu.RLock()
	a := src.svc.st.fingerprints()
	src.svc.mu.RUnlock()
	dst.svc.mu.RLock()
	b := dst.svc.st.fingerprints()
	dst.svc.mu.RUnlock()
	if src.svc.OpCount() != dst.svc.OpCount() || a != b {
		t.Fatalf("after sync: %d ops and %d, fingerprints equal: %v", src.svc.OpCount(), dst.svc.OpCount(), a == b)
	}
	if n := dst.svc.orphans.len(); n != 0 {
		t.Fatalf("%d orphans left after catch-up", n)
	}
}

// largeSync: src holds every op; dst holds the proposals and every
// keepEvery-th vote (and, with filler, reports in every bucket, so that
// every bucket is partly known). The buckets dst partly holds go through
// the ID exchange, in ids replies of idsCap IDs that the client must
// resume. One session must deliver everything.
func largeSync(t *testing.T, voters, proposals, keepEvery int, filler bool, tune func(*Config), idsCap int) {
	keys := make([]crypto.PrivKey, voters)
	for i := range keys {
		keys[i] = newKey(t)
	}
	rb := &rulesBox{}
	rb.set(makeRules(keys, 1, genesis.DefaultGovernance()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	cfg.SyncTimeout = 3 * time.Minute
	tune(&cfg)
	var fill [][]byte
	if filler {
		fill = fillerOps(t, keys[0])
	}
	ops := genOpsParallel(t, keys, proposals)
	src := startNode(t, keys[0], memDS(), rb, cfg)
	src.svc.syncer.idsCap = idsCap
	ingestAll(t, src, fill, 0)
	ingestAll(t, src, ops, proposals)
	if want := len(ops) + len(fill); src.svc.OpCount() != want {
		t.Fatalf("source holds %d of %d ops", src.svc.OpCount(), want)
	}
	dst := startNode(t, newKey(t), memDS(), rb, cfg)
	noAutoSync(dst)
	ingestAll(t, dst, fill, 0)
	var part [][]byte
	for i, raw := range ops {
		if i < proposals || i%keepEvery == 0 {
			part = append(part, raw)
		}
	}
	ingestAll(t, dst, part, proposals)

	// The ids replies list every op of the buckets that differ and that
	// dst partly holds.
	src.svc.mu.RLock()
	dst.svc.mu.RLock()
	listed, partial := 0, 0
	for b := 0; b < 256; b++ {
		if src.svc.st.buckets[b] != dst.svc.st.buckets[b] && dst.svc.st.buckets[b].Count > 0 {
			listed += int(src.svc.st.buckets[b].Count)
			partial++
		}
	}
	dst.svc.mu.RUnlock()
	src.svc.mu.RUnlock()

	if err := dst.h.Connect(context.Background(), peer.AddrInfo{ID: src.id, Addrs: src.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ss, err := dst.svc.runSync(context.Background(), src.id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ops, destination started with %d (%d buckets partly held): added %d in %v; requests %v",
		src.svc.OpCount(), len(fill)+len(part), partial, ss.added, time.Since(start).Round(time.Millisecond), ss.requests)
	if want := (listed + idsCap - 1) / idsCap; ss.requests[reqIDs] != want || want < 2 {
		t.Fatalf("%d ids requests for %d listed IDs at %d per reply, want %d (> 1)", ss.requests[reqIDs], listed, idsCap, want)
	}
	if ss.added != len(ops)-len(part) {
		t.Fatalf("one session added %d of %d missing ops", ss.added, len(ops)-len(part))
	}
	sameSets(t, src, dst)
}

// TestSyncIDsRepliesResume: ids replies cut at a small cap (23 IDs) are
// resumed until every bucket is repaired, in one session.
func TestSyncIDsRepliesResume(t *testing.T) {
	largeSync(t, 10, 60, 10, false, func(c *Config) { c.MaxOpsPerReply = 16 }, 23)
}

// TestSyncMoreThan65536Ops: a sync of more than 65,536 ops at the real
// caps (16,384 IDs per ids reply), every bucket through the ID exchange:
// one session delivers every op and the fingerprints are equal. Skipped
// with -short (it signs and checks ~70k ops).
func TestSyncMoreThan65536Ops(t *testing.T) {
	if testing.Short() {
		t.Skip("signs and verifies ~70k ops")
	}
	largeSync(t, 256, 273, 40, true, func(*Config) {}, maxIDsPerReply)
}
