package raftnet

import (
	"context"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// Leader changes and heartbeat lag as the metrics see them: one change per
// validator for the first leader, one more on the survivors when the
// leader dies; the lag stays below the heartbeat timeout while the leader
// is up, grows on a follower cut off from it, and is 0 on the leader and on
// a non-validator.
func TestLeaderChangesAndHeartbeatLag(t *testing.T) {
	c := newCluster(t, 3, 4)
	vals := span(0, 3)
	l := c.leader(vals)
	hb := testConfig("").HeartbeatTimeout
	testutil.WaitFor(t, 10*time.Second, "every validator knows the first leader", func() bool {
		for _, i := range vals {
			if c.nodes[i].svc.LeaderChanges() != 1 {
				return false
			}
		}
		return true
	})
	if got := c.nodes[3].svc.LeaderChanges(); got != 0 {
		t.Fatalf("non-validator counts %d leader changes", got)
	}
	if lag := c.nodes[l].svc.HeartbeatLag(); lag != 0 {
		t.Fatalf("leader reports heartbeat lag %v", lag)
	}
	if lag, term := c.nodes[3].svc.HeartbeatLag(), c.nodes[3].svc.Term(); lag != 0 || term != 0 {
		t.Fatalf("non-validator reports lag %v term %d", lag, term)
	}
	for _, i := range without(vals, l) {
		if lag := c.nodes[i].svc.HeartbeatLag(); lag <= 0 || lag > hb {
			t.Fatalf("follower %d: heartbeat lag %v with a live leader (heartbeat timeout %v)", i, lag, hb)
		}
		if c.nodes[i].svc.Term() == 0 {
			t.Fatalf("follower %d: term 0", i)
		}
	}

	// Kill the leader: the survivors elect another and count it.
	term := c.nodes[without(vals, l)[0]].svc.Term()
	if err := c.nodes[l].svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rest := without(vals, l)
	nl := c.leader(rest)
	testutil.WaitFor(t, 10*time.Second, "the survivors count the new leader", func() bool {
		for _, i := range rest {
			if c.nodes[i].svc.LeaderChanges() != 2 {
				return false
			}
		}
		return true
	})
	if got := c.nodes[nl].svc.Term(); got <= term {
		t.Fatalf("term %d after an election, was %d", got, term)
	}

	// A follower that hears nothing from the leader sees its lag grow past
	// the heartbeat timeout (it then campaigns, which it cannot win alone).
	f := without(rest, nl)[0]
	c.partition([]int{f}, []int{nl})
	testutil.WaitFor(t, 10*time.Second, "the cut-off follower's lag passes the heartbeat timeout", func() bool {
		return c.nodes[f].svc.HeartbeatLag() > hb
	})
	c.heal()
}
