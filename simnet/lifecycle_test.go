package simnet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/simnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// proposeReq proposes req from node i and has every running node vote
// for it; it returns the proposal ID.
func proposeReq(t *testing.T, nw *simnet.Net, i int, req httpapi.ProposeRequest) string {
	t.Helper()
	ctx := context.Background()
	gov, _, _ := nw.Nodes[i].APIBackends()
	p, err := gov.Propose(ctx, req)
	if err != nil {
		t.Fatalf("propose %+v: %v", req, err)
	}
	for j, nd := range nw.Nodes {
		if nd == nil {
			continue
		}
		g, _, _ := nd.APIBackends()
		testutil.WaitFor(t, 30*time.Second, "proposal visible", func() bool { _, err := g.Proposal(ctx, p.ProposalID); return err == nil })
		if _, err := g.Vote(ctx, p.ProposalID, "approval"); err != nil {
			t.Fatalf("node %d votes: %v", j, err)
		}
	}
	return p.ProposalID
}

// packageReq imports the example package on node 0 and returns a
// request proposing it.
func packageReq(t *testing.T, nw *simnet.Net, name, version string) httpapi.ProposeRequest {
	t.Helper()
	f, err := os.Open(example(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _, pkgs := nw.Nodes[0].APIBackends()
	info, err := pkgs.AddPackage(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.ProposeRequest{Title: name, Version: version, PackageURL: info.URL, PackageHash: info.SHA256, PackageSize: info.Size}
}

// historyOf is node i's history records of entry seq.
func historyOf(nw *simnet.Net, i int, seq uint64) []upgrade.HistoryEntry {
	var out []upgrade.HistoryEntry
	for _, h := range nw.Nodes[i].Upgrades().History() {
		if h.Seq == seq && h.EntryHash != "" {
			out = append(out, h)
		}
	}
	return out
}

// TestScheduledUpgrade: an upgrade scheduled a few seconds ahead is
// prepared everywhere as soon as it is final (readiness reports), runs on
// every node no earlier than its time — in the activate entry right after
// it — and a node restarted while it waits activates it too.
func TestScheduledUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	nw := startNet(t, 5, 4)
	req := packageReq(t, nw, "add-feature-flag", "1.2.0")
	at := time.Now().Add(20 * time.Second).Truncate(time.Second).Add(time.Second)
	req.ActivateAt = at.UTC().Format(time.RFC3339)
	id := proposeReq(t, nw, 0, req)
	waitExecuted(t, nw, 1)
	for i := range nw.Nodes {
		h := historyOf(nw, i, 1)
		if len(h) != 1 || h[0].Event != upgrade.EventScheduled || !h[0].Success {
			t.Fatalf("node %d entry 1: %+v", i, h)
		}
		if v := nw.Nodes[i].Upgrades().Status().CurrentVersion; v != "1.0.0" {
			t.Fatalf("node %d runs a scheduled upgrade early: version %s", i, v)
		}
		_, upg, _ := nw.Nodes[i].APIBackends()
		st, _ := upg.Status(context.Background())
		if st.Scheduled == nil || st.Scheduled.ProposalID != id || st.Scheduled.Seq != 1 {
			t.Fatalf("node %d status %+v", i, st.Scheduled)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "readiness reports of every node", func() bool {
		reps := nw.Nodes[0].Gossip().Reports(1)
		return len(reps) == 1 && len(reps[firstKey(reps)]) == len(nw.Nodes)
	})
	// A node restarts while the upgrade waits.
	ctx := context.Background()
	if err := nw.StopNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := nw.RestartNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	waitExecuted(t, nw, 2)
	var hash string
	for i := range nw.Nodes {
		h := historyOf(nw, i, 2)
		if len(h) != 1 || h[0].Event != upgrade.EventUpgrade || !h[0].Success || h[0].ProposalID != id {
			t.Fatalf("node %d entry 2: %+v", i, h)
		}
		ran, _ := time.Parse(time.RFC3339Nano, h[0].ExecutedAt)
		if ran.Before(at) {
			t.Fatalf("node %d ran the upgrade at %s, before %s", i, ran, at)
		}
		if e := nw.Nodes[i].Gossip().ExecutionLog()[1]; e.Action != "activate" || e.Target != 1 {
			t.Fatalf("node %d entry 2 is %+v", i, e)
		}
		if hash == "" {
			hash = h[0].PostStateSHA256
		}
		if h[0].PostStateSHA256 != hash {
			t.Fatalf("node %d state %s, want %s", i, h[0].PostStateSHA256, hash)
		}
	}
	// The readiness reports named the state activation produced.
	if _, ok := nw.Nodes[0].Gossip().Reports(1)[hash]; !ok {
		t.Fatalf("readiness reports %v do not name the state %s", nw.Nodes[0].Gossip().Reports(1), hash)
	}
}

func firstKey(m map[string][]peer.ID) string {
	for k := range m {
		return k
	}
	return ""
}

// TestCancelScheduledUpgrade: an upgrade scheduled far ahead is cancelled
// by a cancel proposal before its time: every node records the cancel and
// never runs it, a node restarted afterwards keeps the outcome, and the
// next proposal executes.
func TestCancelScheduledUpgrade(t *testing.T) {
	nw := startNet(t, 5, 4)
	pk := addPackage(t, nw.Nodes[0], tinyModule("sch"))
	a := proposeReq(t, nw, 0, httpapi.ProposeRequest{Title: "later", Version: "1.2.0", PackageURL: pk.url,
		PackageHash: pk.sha, PackageSize: pk.size, ActivateAfterSeconds: 3600})
	waitExecuted(t, nw, 1)
	c := proposeReq(t, nw, 1, httpapi.ProposeRequest{Type: httpapi.TypeCancel, Title: "no, thanks", Target: a[:len(a)-24]})
	waitExecuted(t, nw, 2)
	for i := range nw.Nodes {
		e := nw.Nodes[i].Gossip().ExecutionLog()[1]
		if e.Action != "cancel" || e.Target != 1 || e.ProposalID != c {
			t.Fatalf("node %d entry 2: %+v", i, e)
		}
		if h := historyOf(nw, i, 2); len(h) != 1 || h[0].Event != upgrade.EventCancelled {
			t.Fatalf("node %d history of 2: %+v", i, h)
		}
		v, _ := nw.Nodes[i].Gossip().Proposal(a, time.Now())
		if v.Status != gossip.StatusCancelled {
			t.Fatalf("node %d: the cancelled proposal says %s", i, v.Status)
		}
	}
	ctx := context.Background()
	if err := nw.StopNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := nw.RestartNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	pk2 := addPackage(t, nw.Nodes[0], tinyModule("nxt"))
	b := proposeReq(t, nw, 2, httpapi.ProposeRequest{Title: "next", Version: "1.3.0", PackageURL: pk2.url, PackageHash: pk2.sha, PackageSize: pk2.size})
	waitExecuted(t, nw, 3)
	for i := range nw.Nodes {
		if e := nw.Nodes[i].Gossip().ExecutionLog()[2]; e.ProposalID != b {
			t.Fatalf("node %d entry 3: %+v", i, e)
		}
		if i, ran := ranProposal(nw, a); ran {
			t.Fatalf("node %d ran the cancelled upgrade", i)
		}
	}
}

// TestCancelAfterRunIsTooLate: a cancel of an upgrade that already ran
// is refused when proposed; a cancel that races the run (proposed on a
// node whose log lagged) is never ordered and its status says too_late.
func TestCancelAfterRunIsTooLate(t *testing.T) {
	nw := startNet(t, 5, 4)
	pk := addPackage(t, nw.Nodes[0], tinyModule("now"))
	a := proposeReq(t, nw, 0, httpapi.ProposeRequest{Title: "now", Version: "1.2.0", PackageURL: pk.url, PackageHash: pk.sha, PackageSize: pk.size})
	waitExecuted(t, nw, 1)
	gov, _, _ := nw.Nodes[1].APIBackends()
	_, err := gov.Propose(context.Background(), httpapi.ProposeRequest{Type: httpapi.TypeCancel, Title: "too late", Target: a})
	if !errors.Is(err, httpapi.ErrInvalid) || !strings.Contains(err.Error(), "too late") {
		t.Fatalf("late cancel: %v", err)
	}
	time.Sleep(2 * time.Second)
	for i, nd := range nw.Nodes {
		if log := nd.Gossip().ExecutionLog(); len(log) != 1 {
			t.Fatalf("node %d: the late cancel got an entry: %+v", i, log)
		}
	}
}

// TestNetworkRollback: an upgrade scheduled 5 s after its entry is final
// runs on every node no earlier than that; then a rollback proposal brings
// every node back to the state from before it, under a new, higher
// version — including a node that lost its backup (it replays the log)
// and a node that was down while the rollback was decided — and all
// report one state hash.
func TestNetworkRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	nw := startNet(t, 5, 4)
	ctx := context.Background()
	before := nw.Nodes[0].Upgrades().Status().StateSHA256
	req := packageReq(t, nw, "add-feature-flag", "1.2.0")
	req.ActivateAfterSeconds = 5
	a := proposeReq(t, nw, 0, req)
	waitExecuted(t, nw, 2)
	for i, nd := range nw.Nodes {
		h := historyOf(nw, i, 2)
		if len(h) != 1 || h[0].Event != upgrade.EventUpgrade || !h[0].Success {
			t.Fatalf("node %d entry 2: %+v", i, h)
		}
		ran, _ := time.Parse(time.RFC3339Nano, h[0].ExecutedAt)
		if final := nd.Gossip().FinalAt(1); final.IsZero() || ran.Before(final.Add(5*time.Second)) {
			t.Fatalf("node %d ran at %s; entry 1 final there at %s", i, ran, final)
		}
	}
	if nw.Nodes[0].Upgrades().Status().StateSHA256 == before {
		t.Fatal("the upgrade changed nothing")
	}
	// Node 4 loses its backups; node 3 is down while the rollback is
	// proposed, voted and executed.
	if err := os.RemoveAll(filepath.Join(nw.DataDir(4), "upgrades", "versions")); err != nil {
		t.Fatal(err)
	}
	if err := nw.StopNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	r := proposeReq(t, nw, 1, httpapi.ProposeRequest{Type: httpapi.TypeRollback, Title: "undo", Target: a, Version: "1.3.0"})
	waitExecuted(t, nw, 3)
	if err := nw.RestartNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitExecuted(t, nw, 3)
	var hash string
	for i := range nw.Nodes {
		h := historyOf(nw, i, 3)
		if len(h) != 1 || h[0].Event != upgrade.EventNetworkRollback || !h[0].Success || h[0].ProposalID != r {
			t.Fatalf("node %d entry 3: %+v", i, h)
		}
		st := nw.Nodes[i].Upgrades().Status()
		if st.CurrentVersion != "1.3.0" {
			t.Fatalf("node %d version %s", i, st.CurrentVersion)
		}
		if hash == "" {
			hash = st.StateSHA256
		}
		if st.StateSHA256 != hash {
			t.Fatalf("node %d state %s, want %s", i, st.StateSHA256, hash)
		}
	}
	// The restored state is the one before the upgrade, with the new version.
	_, state, _ := nw.Nodes[0].Upgrades().State()
	want, _, err := upgrade.SetVersion(genesisState(t, nw), "1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	if string(state) != string(want) {
		t.Fatalf("restored state differs from the genesis state under 1.3.0")
	}
	testutil.WaitFor(t, 20*time.Second, "one report hash for the rollback", func() bool {
		reps := nw.Nodes[0].Gossip().Reports(3)
		return len(reps) == 1 && len(reps[hash]) == len(nw.Nodes)
	})
	// Rolling back again is refused: the rollback itself is the latest run.
	gov, _, _ := nw.Nodes[2].APIBackends()
	if _, err := gov.Propose(ctx, httpapi.ProposeRequest{Type: httpapi.TypeRollback, Title: "again", Target: a, Version: "1.4.0"}); !errors.Is(err, httpapi.ErrInvalid) {
		t.Fatalf("second rollback of the same upgrade: %v", err)
	}
}

func genesisState(t *testing.T, nw *simnet.Net) []byte {
	t.Helper()
	s, err := nw.Genesis().InitialState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
