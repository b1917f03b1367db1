package gossip

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// TestSyncServerFollowsTheRule: the server's ids, ops and get replies
// equal those of fakeSet (the rule of docs/protocols.md written plainly)
// for random requests, before and after the set grows (the sorted bucket
// cache follows the set).
func TestSyncServerFollowsTheRule(t *testing.T) {
	key := newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{key}, 1, openVoting()))
	cfg := testConfig()
	cfg.MaxOpsPerReply = 7
	n := startNode(t, key, memDS(), rb, cfg)
	n.svc.syncer.idsCap = 11
	props := proposalsFrom(t, key, 120)
	rng := rand.New(rand.NewPCG(1, 2))
	var held [][]byte
	for round, upto := range []int{60, 120} {
		for _, p := range props[len(held):upto] {
			if err := n.svc.Ingest(p.Raw); err != nil {
				t.Fatal(err)
			}
			held = append(held, p.Raw)
		}
		ref := newFakeSet(held)
		for i := 0; i < 300; i++ {
			req := randomRequest(rng, ref)
			want := ref.answer(&req, n.svc.syncer.idsCap, cfg.MaxOpsPerReply)
			got := n.svc.answer(&req)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, request %+v:\n got %+v\nwant %+v", round, req, got, want)
			}
		}
	}
}

// randomRequest draws a valid ids, ops or get request over ref's IDs.
func randomRequest(rng *rand.Rand, ref *fakeSet) syncRequest {
	switch rng.IntN(3) {
	case 0:
		var ids [][]byte
		for k := 1 + rng.IntN(12); k > 0; k-- {
			id := make([]byte, 32)
			if rng.IntN(3) > 0 {
				x := ref.ids[rng.IntN(len(ref.ids))]
				copy(id, x[:])
			} else {
				id[0] = byte(rng.IntN(256)) // not held
			}
			ids = append(ids, id)
		}
		return syncRequest{Type: reqGet, IDs: ids}
	default:
		typ := reqIDs
		if rng.IntN(2) == 0 {
			typ = reqOps
		}
		set := map[uint16]bool{}
		for k := 1 + rng.IntN(40); k > 0; k-- {
			set[uint16(rng.IntN(256))] = true
		}
		var b []uint16
		for x := range set {
			b = append(b, x)
		}
		sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
		req := syncRequest{Type: typ, Buckets: b}
		if rng.IntN(2) == 0 {
			// after: an ID of the first bucket, or just any ID in it.
			after := make([]byte, 32)
			after[0] = byte(b[0])
			for _, id := range ref.ids {
				if uint16(id[0]) == b[0] && rng.IntN(2) == 0 {
					copy(after, id[:])
				}
			}
			req.After = after
		}
		return req
	}
}
