package gossip

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/partition"
)

const testNet = "00000000deadbeef"

// tnode is one test node: a loopback host, its gater and its service.
type tnode struct {
	key  crypto.PrivKey
	id   peer.ID
	h    host.Host
	g    *partition.Gater
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
	return c
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newHost starts a libp2p host on 127.0.0.1 with a gater.
func newHost(t testing.TB, key crypto.PrivKey) (host.Host, *partition.Gater) {
	g := partition.NewGater()
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

// members are the nodes as p2ptest partition members.
func members(nodes []*tnode) []partition.Member {
	var out []partition.Member
	for _, n := range nodes {
		out = append(out, partition.Member{Host: n.h, Gater: n.g})
	}
	return out
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
func (s *Service) publishRatify(ctx context.Context, e execlog.Entry) error {
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

// validateOp checks raw against the current rules only (every entry's rules
// taken to be rules); see opChecker.validate.
func validateOp(raw []byte, netID string, rules genesis.Rules, lookup func(OpID) (*Op, bool)) (*Op, error) {
	return opChecker{NetID: netID, Rules: rules, Lookup: lookup}.validate(raw)
}

// opIDs returns every op ID in the set, sorted.
func (s *Service) opIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.st.ops))
	for id := range s.st.ops {
		out = append(out, id.String())
	}
	sort.Strings(out)
	return out
}

// rawOps returns the wire bytes of every op, sorted by ID.
func (s *Service) rawOps() [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]OpID, 0, len(s.st.ops))
	for id := range s.st.ops {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = s.st.ops[id].Raw
	}
	return out
}

// signedAt returns the entry hash this validator's signing record holds for
// seq ("" if it signed nothing there).
func (s *Service) signedAt(seq uint64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.signed[seq]
}
