package gossip

import (
	"context"
	"maps"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func TestRejectCacheBoundedAndVersioned(t *testing.T) {
	c := newRejectCache(8)
	h := func(i int) msgHash { return hashMsg([]byte{byte(i)}) }
	for i := 0; i < 100; i++ {
		c.add(h(i), "v1")
		if c.len() > 8 {
			t.Fatalf("cache holds %d entries (max 8)", c.len())
		}
	}
	if !c.has(h(99), "v1") || c.has(h(0), "v1") {
		t.Fatal("cache lost its newest entry or kept its oldest")
	}
	// A hit in the old generation survives the next swap.
	c.add(h(200), "v1")
	for i := 0; i < 3; i++ {
		c.add(h(300+i), "v1")
	}
	if !c.has(h(200), "v1") {
		t.Fatal("entry of the previous generation lost")
	}
	c.add(h(400), "v1")
	if !c.has(h(200), "v1") {
		t.Fatal("entry read in the previous generation was not kept")
	}
	if c.has(h(99), "v2") || c.len() != 0 {
		t.Fatal("a new rules version did not empty the cache")
	}
}

// TestIngestBatchCachesOnlyAuthenticRejections: a forged copy of an op is
// counted against the peer and never cached; an authentic op that is
// invalid (unauthorised) is cached by the hash of its bytes, and the cache
// is emptied when the rules change (the op is then accepted).
func TestIngestBatchCachesOnlyAuthenticRejections(t *testing.T) {
	member, stranger := newKey(t), newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{member}, 1, genesis.DefaultGovernance()))
	n := startNode(t, member, memDS(), rb, testConfig())
	// ingest runs raws through a fresh session's ingest path.
	ingest := func(raws ...[]byte) (added, bad int) {
		ss := newSession(context.Background(), n.svc, peer.ID("test-peer"), nil, nil)
		ss.ingest(raws)
		ss.finish()
		return ss.added, ss.bad
	}

	real := proposalsFrom(t, member, 1)[0]
	added, bad := ingest(forge(t, real.Raw), forge(t, real.Raw))
	if added != 0 || bad != 2 {
		t.Fatalf("forged copies: added %d, bad %d", added, bad)
	}
	if n.svc.rejects.len() != 0 {
		t.Fatal("a forged copy was cached")
	}
	if added, bad := ingest(real.Raw); added != 1 || bad != 0 {
		t.Fatalf("the real op after forged copies: added %d, bad %d", added, bad)
	}

	unauth := proposalsFrom(t, stranger, 1)[0]
	for i := 0; i < 2; i++ {
		if added, bad := ingest(unauth.Raw); added != 0 || bad != 0 {
			t.Fatalf("unauthorised op: added %d, bad %d", added, bad)
		}
		if !n.svc.rejects.has(hashMsg(unauth.Raw), rb.get().Version) || n.svc.rejects.len() != 1 {
			t.Fatal("authentic invalid op not cached by message hash")
		}
	}
	r := rb.get()
	r.Version = "1.1.0"
	r.Reputation = maps.Clone(r.Reputation)
	sid, _ := peer.IDFromPrivateKey(stranger)
	r.Reputation[sid] = 1
	rb.set(r)
	if added, _ := ingest(unauth.Raw); added != 1 {
		t.Fatal("op admitted by the new rules was still skipped")
	}
}
