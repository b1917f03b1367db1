package raftnet

import (
	"context"

	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Garbage on a raft stream from a validator's host does not hurt the
// receiver: raft drops the connection and the cluster keeps committing.
func TestGarbageFromValidatorIsDropped(t *testing.T) {
	c := newCluster(t, 3, 3)
	all := span(0, 3)
	l := c.leader(all)
	from := c.nodes[(l+1)%3].h
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		st, err := from.NewStream(ctx, c.nodes[l].h.ID(), ProtocolID(p2ptestNetID()))
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef})
		st.Close()
	}
	c.propose("p1")
	c.waitEntries(all, 1, 20*time.Second)
	c.sameLogs(all, "p1")
}

// Invalid candidates are skipped without blocking valid ones; a slot no
// validator will sign (here: p1) is voided by the leader after
// StallTimeout, and the log goes on with p2; a validator whose check waits
// is retried, never skipped.
func TestInvalidCandidatesAndVoid(t *testing.T) {
	c := &cluster{t: t, mutate: func(cfg *Config) { cfg.StallTimeout = time.Second }}
	c = newClusterWith(t, c, 3, 3)
	all := span(0, 3)
	c.nodes[1].gov.setFailFirst(4)
	c.leader(all)
	c.net.mu.Lock()
	c.net.unsignable = map[string]bool{pid("p1"): true}
	c.net.cands = append(c.net.cands,
		Candidate{ProposalID: pid("bad-hash"), Version: "1.2.0", PackageURL: "ipfs://x", PackageHash: "md5:abc", PackageSize: 1},
		Candidate{ProposalID: pid("bad-version"), Version: "v1", PackageURL: "ipfs://x",
			PackageHash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", PackageSize: 1},
		Candidate{ProposalID: "upgrade_short", Version: "1.2.0", PackageURL: "ipfs://x",
			PackageHash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", PackageSize: 1},
	)
	c.net.mu.Unlock()
	c.propose("p1", "p2")
	c.waitFinal(2, 30*time.Second)
	s1, _ := c.nodes[0].gov.Final(1)
	s2, _ := c.nodes[0].gov.Final(2)
	if !s1.Void || name(s2.ProposalID) != "p2" {
		t.Fatalf("final log %+v, %+v; want void then p2", s1, s2)
	}
	for _, i := range all {
		for _, sl := range c.nodes[i].svc.Slots() {
			if n := name(sl.ProposalID); !sl.Void && n != "p1" && n != "p2" {
				t.Fatalf("node %d ordered an invalid candidate: %+v", i, sl)
			}
		}
	}
}

// banCluster is 4 validators with short stall/grace timeouts.
func banCluster(t *testing.T) *cluster {
	c := &cluster{t: t, mutate: func(cfg *Config) {
		cfg.StallTimeout = time.Second
		cfg.LeaderGrace = time.Second
		cfg.BanDuration = time.Minute
	}}
	return newClusterWith(t, c, 4, 4)
}

func (c *cluster) bannedBy(p peer.ID) int {
	n := 0
	for _, nd := range c.nodes {
		if _, ok := nd.svc.Banned()[p]; ok {
			n++
		}
	}
	return n
}

// TestByzantineLeaderThatNeverVoidsIsDeposed: a leader that leaves an
// unsignable slot stalled (its own view claims a quorum) is banned by the
// followers; the next leader voids the slot and the log goes on.
func TestByzantineLeaderThatNeverVoidsIsDeposed(t *testing.T) {
	c := banCluster(t)
	all := span(0, 4)
	l := c.leader(all)
	c.nodes[l].gov.mu.Lock()
	c.nodes[l].gov.lieQuorum = true
	c.nodes[l].gov.mu.Unlock()
	c.net.mu.Lock()
	c.net.unsignable = map[string]bool{pid("p1"): true}
	c.net.mu.Unlock()
	c.propose("p1", "p2")
	c.waitFinal(2, 40*time.Second)
	s1, _ := c.nodes[0].gov.Final(1)
	s2, _ := c.nodes[0].gov.Final(2)
	if !s1.Void || name(s2.ProposalID) != "p2" {
		t.Fatalf("final log %+v, %+v; want void then p2", s1, s2)
	}
	// Followers ban it once their own stall clocks run out; the first ban
	// can already cost it the leadership (the banning follower's elections
	// raise the term), so the others may never need to.
	bad := c.nodes[l].h.ID()
	if n := c.bannedBy(bad); n < 1 {
		t.Fatalf("the stalling leader is banned by %d followers", n)
	}
	if c.nodes[l].svc.IsLeader() {
		t.Fatal("the stalling leader still leads")
	}
}

// TestByzantineLeaderThatCensorsIsDeposed: a leader that never orders an
// approved proposal is banned; another leader orders it.
func TestByzantineLeaderThatCensorsIsDeposed(t *testing.T) {
	c := banCluster(t)
	all := span(0, 4)
	l := c.leader(all)
	c.nodes[l].gov.mu.Lock()
	c.nodes[l].gov.censor = true
	c.nodes[l].gov.mu.Unlock()
	c.propose("p1")
	c.waitFinal(1, 40*time.Second)
	if s1, _ := c.nodes[0].gov.Final(1); name(s1.ProposalID) != "p1" {
		t.Fatalf("final %+v", s1)
	}
	if n := c.bannedBy(c.nodes[l].h.ID()); n < 1 { // see above: one ban can be enough
		t.Fatalf("the censoring leader is banned by %d followers", n)
	}
}
