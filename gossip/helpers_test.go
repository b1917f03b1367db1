package gossip

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

const testNet = "00000000deadbeef"

// gater blocks connections to and from peers in its set (partitions).
type gater struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

func (g *gater) isBlocked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[p]
}
func (g *gater) InterceptPeerDial(p peer.ID) bool                                { return !g.isBlocked(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool                { return !g.isBlocked(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.isBlocked(p)
}

// tnode is one test node: a loopback host, its gater and its service.
type tnode struct {
	key  crypto.PrivKey
	id   peer.ID
	h    host.Host
	g    *gater
	ds   datastore.Batching
	svc  *Service
	name string
}

// rulesBox holds rules a test may change at run time: the current rules,
// rules in force for particular seqs, and a horizon beyond which the rules
// are unknown (0: none).
type rulesBox struct {
	v       atomic.Pointer[genesis.Rules]
	mu      sync.Mutex
	per     map[uint64]genesis.Rules
	horizon uint64
}

func (b *rulesBox) get() genesis.Rules  { return *b.v.Load() }
func (b *rulesBox) set(r genesis.Rules) { b.v.Store(&r) }

// setFor sets the rules in force for entry seq.
func (b *rulesBox) setFor(seq uint64, r genesis.Rules) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.per == nil {
		b.per = map[uint64]genesis.Rules{}
	}
	b.per[seq] = r
}

// setHorizon makes the rules of seqs above h unknown (0: all known).
func (b *rulesBox) setHorizon(h uint64) {
	b.mu.Lock()
	b.horizon = h
	b.mu.Unlock()
}

func (b *rulesBox) rulesFor(seq uint64) (genesis.Rules, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.per[seq]; ok {
		return r, true
	}
	if b.horizon > 0 && seq > b.horizon {
		return genesis.Rules{}, false
	}
	return b.get(), true
}

func newKey(t testing.TB) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// makeRules: every key has reputation rep[i] (default 10), the first nval
// are validators.
func makeRules(keys []crypto.PrivKey, nval int, gov genesis.Governance) genesis.Rules {
	r := genesis.Rules{Version: "1.0.0", Reputation: map[peer.ID]float64{}, Governance: gov}
	for i, k := range keys {
		id, _ := peer.IDFromPrivateKey(k)
		r.Reputation[id] = 10
		if i < nval {
			r.Validators = append(r.Validators, id)
		}
	}
	sortIDs(r.Validators)
	return r
}

func sortIDs(ids []peer.ID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.SyncInterval = 300 * time.Millisecond
	c.SyncTimeout = 20 * time.Second
	c.CheckTallyWait = 5 * time.Second
	return c
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newHost starts a libp2p host on 127.0.0.1 with a gater.
func newHost(t testing.TB, key crypto.PrivKey) (host.Host, *gater) {
	g := &gater{blocked: map[peer.ID]bool{}}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ConnectionGater(g), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	return h, g
}

// startNode builds a host and a service for key over ds.
func startNode(t testing.TB, key crypto.PrivKey, ds datastore.Batching, rules *rulesBox, cfg Config) *tnode {
	t.Helper()
	h, g := newHost(t, key)
	svc, err := New(context.Background(), cfg, Deps{Host: h, Key: key, Datastore: ds, NetID: testNet,
		Rules: rules.get, RulesFor: rules.rulesFor, Logger: testLogger(t)})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	n := &tnode{key: key, id: h.ID(), h: h, g: g, ds: ds, svc: svc, name: h.ID().String()[len(h.ID().String())-6:]}
	t.Cleanup(n.stop)
	return n
}

func (n *tnode) stop() {
	n.svc.Close(context.Background())
	n.h.Close()
}

func memDS() datastore.Batching { return dssync.MutexWrap(datastore.NewMapDatastore()) }

func connect(t testing.TB, a, b *tnode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.id, Addrs: b.h.Addrs()}); err != nil {
		t.Fatalf("connect %s -> %s: %v", a.name, b.name, err)
	}
}

// partition blocks and closes every connection between groups a and b.
func partition(a, b []*tnode, block bool) {
	for _, x := range a {
		for _, y := range b {
			x.g.mu.Lock()
			x.g.blocked[y.id] = block
			x.g.mu.Unlock()
			y.g.mu.Lock()
			y.g.blocked[x.id] = block
			y.g.mu.Unlock()
			if block {
				x.h.Network().ClosePeer(y.id)
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// viewDigest is a comparable rendering of a node's views, without local
// first-seen times.
func viewDigest(s *Service, now time.Time) string {
	ps := s.Proposals(now)
	for i := range ps {
		ps[i].FirstSeen = time.Time{}
		ps[i].Status = "" // depends on local first-seen for the voting period
	}
	log := s.ExecutionLog()
	var reps []map[string][]peer.ID
	for _, e := range log {
		reps = append(reps, s.Reports(e.Seq))
	}
	b, _ := json.Marshal(struct {
		P any
		L any
		R any
		N int
	}{ps, log, reps, s.OpCount()})
	return string(b)
}

func testBody(i int) ProposalBody {
	return ProposalBody{Title: fmt.Sprintf("upgrade %d", i), Description: "test", Version: fmt.Sprintf("1.%d.0", i+1),
		PackageURL: fmt.Sprintf("ipfs://bafy%d", i), PackageHash: "sha256:" + fmt.Sprintf("%064x", i+1), PackageSize: 1000 + int64(i)}
}

// publishRatify signs e as this node, as a validator's Endorse would,
// without the attest round (tests of finality and storage).
func (s *Service) publishRatify(ctx context.Context, e Entry) error {
	if r, _ := s.rulesFor(e.Seq); !r.IsValidator(s.self) {
		return ErrNotValidator
	}
	return s.sign(ctx, e, "")
}

// openVoting is the default governance with open voting: any key may
// propose and vote (tests that need many authors).
func openVoting() genesis.Governance {
	g := genesis.DefaultGovernance()
	g.OpenVoting = true
	return g
}
