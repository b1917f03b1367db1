package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// bareHost starts a host with no gossip service, connected to n.
func bareHost(t *testing.T, key crypto.PrivKey, n *tnode) host.Host {
	t.Helper()
	h, _ := newHost(t, key)
	t.Cleanup(func() { h.Close() })
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: n.id, Addrs: n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return h
}

// sybilSessions opens one sync session from each of k fresh non-member
// hosts to n and returns those n served. The others must be refused with
// an err reply (errSyncRefused).
func sybilSessions(t *testing.T, n *tnode, k int) (served []*sessionConn) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < k; i++ {
		h := bareHost(t, newKey(t), n)
		c, err := openSession(ctx, h, n.id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.str.Reset() })
		switch err := c.fingerprint(); {
		case err == nil:
			served = append(served, c)
		case !errors.Is(err, errSyncRefused):
			t.Fatalf("session %d refused without a clear error: %v", i, err)
		}
	}
	return served
}

// TestSyncSybilsCannotLockOutMembers: MaxSyncSessions Sybil peers (fresh
// keys, no reputation) open sync sessions and hold them; at most
// MaxNonMemberSyncSessions are served, and a member still syncs.
func TestSyncSybilsCannotLockOutMembers(t *testing.T) {
	srvKey, memberKey, member2Key := newKey(t), newKey(t), newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{srvKey, memberKey, member2Key}, 1, genesis.DefaultGovernance()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	srv := startNode(t, srvKey, memDS(), rb, cfg)
	if _, err := srv.svc.PublishProposal(context.Background(), testBody(1)); err != nil {
		t.Fatal(err)
	}

	sybils := sybilSessions(t, srv, cfg.MaxSyncSessions)
	if len(sybils) > cfg.MaxSyncSessions/2 {
		t.Fatalf("%d of %d non-member sessions served (max %d)", len(sybils), cfg.MaxSyncSessions, cfg.MaxSyncSessions/2)
	}
	if len(sybils) == 0 {
		t.Fatal("no non-member session served at all")
	}

	// A member speaking the protocol by hand is served.
	mh := bareHost(t, memberKey, srv)
	c, err := openSession(context.Background(), mh, srv.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.str.Close()
	if !c.served() {
		t.Fatal("member's session refused while Sybils hold sessions")
	}
	// A member node catches up through its own sync.
	m2 := startNode(t, member2Key, memDS(), rb, cfg)
	noAutoSync(m2)
	connect(t, m2, srv)
	if n, err := m2.svc.syncWith(context.Background(), srv.id); err != nil || n != 1 {
		t.Fatalf("member node's sync: %d new ops, %v", n, err)
	}
	for _, s := range sybils {
		if !s.served() {
			t.Fatal("a served Sybil session was ended although slots were free")
		}
	}
}

// TestSyncMemberEvictsOldestNonMember: when every slot is taken and
// non-members hold some, a member's session evicts the oldest non-member
// session.
func TestSyncMemberEvictsOldestNonMember(t *testing.T) {
	srvKey, memberKey := newKey(t), newKey(t)
	rb := &rulesBox{}
	rb.set(makeRules([]crypto.PrivKey{srvKey, memberKey}, 1, genesis.DefaultGovernance()))
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	cfg.MaxSyncSessions = 4
	cfg.MaxNonMemberSyncSessions = 4
	srv := startNode(t, srvKey, memDS(), rb, cfg)

	sybils := sybilSessions(t, srv, 5)
	if len(sybils) != 4 {
		t.Fatalf("%d of 5 sessions served with 4 slots", len(sybils))
	}
	mh := bareHost(t, memberKey, srv)
	c, err := openSession(context.Background(), mh, srv.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.str.Close()
	if !c.served() {
		t.Fatal("member's session refused")
	}
	testutil.WaitFor(t, 5*time.Second, "oldest Sybil session ended", sybils[0].dead)
	for _, s := range sybils[1:] {
		if !s.served() {
			t.Fatal("a newer Sybil session was ended")
		}
	}
}

func TestSyncConfigValidate(t *testing.T) {
	for name, tune := range map[string]func(*Config){
		"non-member sessions above the total": func(c *Config) { c.MaxNonMemberSyncSessions = c.MaxSyncSessions + 1 },
		"negative non-member sessions":        func(c *Config) { c.MaxNonMemberSyncSessions = -1 },
		"no reject cache":                     func(c *Config) { c.RejectCacheSize = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tune(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
	c := DefaultConfig()
	c.MaxNonMemberSyncSessions = 0 // members only
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
