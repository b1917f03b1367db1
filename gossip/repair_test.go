package gossip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// A node that missed an entry's ratify ops — dropped on the way, as a full
// GossipSub queue does — learns them from the first report of the entry: a
// second later it syncs with the peer that forwarded the report, long
// before its periodic sync (an hour here). Reports of other seqs do not.
func TestReportRepairsMissedFinality(t *testing.T) {
	b := newKey(t)
	f := newFinalityFixture(t, b)
	a, vals, rb := f.self, f.vals, f.rb
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	na, nb := startNode(t, a, memDS(), rb, cfg), startNode(t, b, memDS(), rb, cfg)
	connect(t, na, nb)
	testutil.WaitFor(t, 10*time.Second, "a topic mesh", func() bool {
		return len(na.svc.topic.ListPeers()) > 0 && len(nb.svc.topic.ListPeers()) > 0
	})

	ctx := context.Background()
	pid, err := na.svc.PublishProposal(ctx, testBody(1))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := na.svc.Proposal(pid, time.Now())
	opid, _ := ParseOpID(v.OpID)
	na.svc.mu.RLock() // b is gossiping with a
	prop, _ := na.svc.st.get(opid)
	na.svc.mu.RUnlock()
	e := execlog.Entry{Seq: 1, ProposalID: pid, Version: v.Body.Version, PackageURL: v.Body.PackageURL,
		PackageHash: v.Body.PackageHash, PackageSize: v.Body.PackageSize}
	testutil.WaitFor(t, 10*time.Second, "the proposal at b", func() bool {
		_, err := nb.svc.Proposal(e.ProposalID, time.Now())
		return err == nil
	})
	// a holds three validators' ratify ops; b never hears of them.
	for i, k := range vals[:3] {
		if err := na.svc.Ingest(ratifyOp(t, k, prop, e, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := na.svc.Final(1); !ok {
		t.Fatal("entry not final at a")
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := nb.svc.Final(1); ok {
		t.Fatal("b learnt the ratify ops without a report")
	}

	// A report of a seq that is not the next one b lacks (any eligible
	// voter may publish one) triggers nothing: b would have synced and
	// learnt the ratify ops.
	if err := na.svc.PublishReport(ctx, Report{Seq: 7, EntryHash: e.Hash(), ProposalID: e.ProposalID, Success: true,
		Version: e.Version, PostStateSHA256: fmt.Sprintf("%064x", 0xabc)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(reportRepairDelay + 500*time.Millisecond)
	if _, ok := nb.svc.Final(1); ok {
		t.Fatal("a report of seq 7 made b sync")
	}

	reported := time.Now()
	if err := na.svc.PublishReport(ctx, Report{Seq: 1, EntryHash: e.Hash(), ProposalID: e.ProposalID, Success: true,
		Version: e.Version, PostStateSHA256: fmt.Sprintf("%064x", 0xabc)}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the entry final at b", func() bool {
		_, ok := nb.svc.Final(1)
		return ok
	})
	if d := time.Since(reported); d < reportRepairDelay {
		t.Fatalf("b synced %v after the report, before the repair delay", d)
	}
}
