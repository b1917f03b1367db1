package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// proposalsFrom signs n proposals by key (seq 1..n).
//
// An author keeps at most maxOpenProposalsPerAuthor proposals in the set,
// so beyond that many the proposals come from further fresh keys: tests
// that need more than that many must allow them (openVoting).
func proposalsFrom(t testing.TB, key crypto.PrivKey, n int) []*Op {
	t.Helper()
	var out []*Op
	for i := 0; i < n; i++ {
		b := testBody(i)
		if i > 0 && i%maxOpenProposalsPerAuthor == 0 {
			key = newKey(t)
		}
		op, err := encodeOp(key, testNet, opDraft{Kind: KindProposal, Seq: uint64(i + 1), Lamport: 1, TS: time.Unix(int64(i), 0),
			Body: proposalBody{Type: "code_upgrade", Title: b.Title, Description: b.Description, Version: b.Version,
				PackageURL: b.PackageURL, PackageHash: b.PackageHash, PackageSize: b.PackageSize}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, op)
	}
	return out
}

// TestSyncForgedSignatureCannotCensor: a peer without any key of the
// network serves copies of real ops with garbage signatures (same op IDs).
// The victim syncs with it, then once with an honest peer: every op
// arrives, both the one in a bucket the victim partly holds (ID exchange)
// and the one in a bucket it holds nothing of (bucket streaming).
func TestSyncForgedSignatureCannotCensor(t *testing.T) {
	author, honestKey, victimKey := newKey(t), newKey(t), newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{author, honestKey, victimKey}, 1, openVoting()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour

	// held and target share a bucket; other is alone in its bucket.
	props := proposalsFrom(t, author, 64)
	var held, target, other *Op
	for i := 0; i < len(props) && held == nil; i++ {
		for j := i + 1; j < len(props); j++ {
			if props[i].ID[0] == props[j].ID[0] {
				held, target = props[i], props[j]
				break
			}
		}
	}
	if held == nil {
		t.Fatal("no two proposals share a bucket")
	}
	for _, p := range props {
		if p.ID[0] != held.ID[0] {
			other = p
			break
		}
	}

	honest := startNode(t, honestKey, memDS(), rb, cfg)
	victim := startNode(t, victimKey, memDS(), rb, cfg)
	noAutoSync(victim) // every session of the victim is explicit
	for _, op := range []*Op{held, target, other} {
		if err := honest.svc.Ingest(op.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := victim.svc.Ingest(held.Raw); err != nil {
		t.Fatal(err)
	}
	rogue := rogueSync(t, newKey(t), serveFake(newFakeSet([][]byte{held.Raw, forge(t, target.Raw), forge(t, other.Raw)})))

	ctx := context.Background()
	if err := victim.h.Connect(ctx, peer.AddrInfo{ID: rogue.ID(), Addrs: rogue.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		n, err := victim.svc.syncWith(ctx, rogue.ID())
		t.Logf("session with the rogue: %d new ops, err %v", n, err)
		if n != 0 {
			t.Fatalf("forged copies added %d ops", n)
		}
	}
	if victim.svc.OpCount() != 1 {
		t.Fatalf("victim holds %d ops after the rogue sessions", victim.svc.OpCount())
	}

	connect(t, victim, honest)
	if _, err := victim.svc.syncWith(ctx, honest.id); err != nil {
		t.Fatalf("sync with the honest peer: %v", err)
	}
	for name, op := range map[string]*Op{"target (partly held bucket)": target, "other (empty bucket)": other} {
		t.Run(name, func(t *testing.T) {
			victim.svc.mu.RLock()
			_, ok := victim.svc.st.get(op.ID)
			victim.svc.mu.RUnlock()
			if !ok {
				t.Error("did not arrive from the honest peer")
			}
		})
	}
}
