package raftnet

import (
	"context"
	"slices"
	"testing"
	"time"
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

// Invalid candidates are skipped without blocking valid ones; a failing
// tally check is retried and never lets a later entry's ratify op go out
// before an earlier one's.
func TestPublishOrderAndInvalidCandidates(t *testing.T) {
	c := newCluster(t, 1, 1)
	n := c.nodes[0]
	n.gov.setFailFirst(4)
	events, stop := n.svc.Events()
	defer stop()
	c.leader([]int{0})
	c.net.mu.Lock()
	c.net.cands = append(c.net.cands,
		Candidate{ProposalID: "bad-hash", Version: "1.2.0", PackageURL: "ipfs://x", PackageHash: "md5:abc", PackageSize: 1},
		Candidate{ProposalID: "bad-version", Version: "v1", PackageURL: "ipfs://x",
			PackageHash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", PackageSize: 1},
	)
	c.net.mu.Unlock()
	c.propose("p1", "p2")
	c.waitEntries([]int{0}, 2, 10*time.Second)
	c.waitPublishedOnce([]int{0}, 2)
	checkLog(t, "node 0", n.svc.Entries(), "p1", "p2")
	if got := ids(n.gov.publishedEntries()); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Fatalf("published %v, want p1 then p2", got)
	}
	retries := 0
	waitFor(t, 5*time.Second, "publish_retry events", func() bool {
		for {
			select {
			case e := <-events:
				if e.Kind == EventPublishRetry {
					if e.Err == nil || e.Entry.Seq != 1 {
						t.Errorf("retry event %+v", e)
					}
					retries++
				}
			default:
				return retries >= 4
			}
		}
	})
	time.Sleep(2 * testConfig("").PollInterval)
	if len(n.svc.Entries()) != 2 {
		t.Fatalf("invalid candidates made entries: %v", ids(n.svc.Entries()))
	}
}
