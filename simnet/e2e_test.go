package simnet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

func TestMain(m *testing.M) {
	upgrade.MaybeRunSandboxChild()
	os.Exit(m.Run())
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	built     = map[string]string{}
)

// example builds an example package once per test binary.
func example(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() { buildDir, buildErr = os.MkdirTemp("", "synapse-e2e-pkgs-*") })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if p, ok := built[name]; ok {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := examplebuild.Build(ctx, name, buildDir)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	built[name] = p
	return p
}

func startNet(t *testing.T, nodes, validators int) *simnet.Net {
	t.Helper()
	return startNetWith(t, simnet.Config{Nodes: nodes, Validators: validators})
}

// startNetWith starts cfg (APIs off, 60 s voting period) with raft timeouts
// short enough for tests (a stalled slot is voided after 3 s) and a sync
// every 5 s.
func startNetWith(t *testing.T, cfg simnet.Config) *simnet.Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.APIBasePort, cfg.VotingPeriod = -1, 60
	if os.Getenv("SIMNET_TEST_LOG") != "" && cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tune := cfg.Tune
	cfg.Tune = func(i int, c *node.Config) {
		// An op published before its publisher knew of a peer's topic
		// subscription reaches that peer only by the periodic sync (2 min by
		// default); under -race on a loaded machine that window is real.
		c.Gossip.SyncInterval = 5 * time.Second
		c.Raft.StallTimeout = 3 * time.Second
		c.Raft.LeaderGrace = 5 * time.Second
		if tune != nil {
			tune(i, c)
		}
		c.Raft.StallTimeout *= testutil.Slack
		c.Raft.LeaderGrace *= testutil.Slack
	}
	net, err := simnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		net.Close(ctx)
	})
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return net
}

func TestDemoEightNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	net := startNet(t, 8, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The Go package by name (the demo's default is the Rust one, which
	// the CLI test runs).
	res, err := net.RunDemo(ctx, simnet.DemoOptions{Package: simnet.DemoPackageGo})
	if err != nil {
		t.Fatalf("demo: %v (timeline %v)", err, res.Timeline)
	}
	if res.Package != "add-feature-flag" || res.PackageSize < 1<<20 {
		t.Fatalf("package %s of %d bytes, want the Go add-feature-flag", res.Package, res.PackageSize)
	}
	if !res.AllExecuted || len(res.Nodes) != 8 {
		t.Fatalf("not all executed: %+v", res.Nodes)
	}
	for _, stage := range simnet.Stages {
		if _, ok := res.Timeline[stage]; !ok {
			t.Errorf("timeline lacks %s: %v", stage, res.Timeline)
		}
	}
	// Every node's signed report reaches every node, all with one hash.
	testutil.WaitFor(t, 30*time.Second, "all reports agree on every node", func() bool {
		for _, nd := range net.Nodes {
			reps := nd.Gossip().Reports(res.Seq)
			if len(reps) != 1 || len(reps[res.Nodes[0].StateHash]) != len(net.Nodes) {
				return false
			}
		}
		return true
	})
	gov, _, _ := net.Nodes[3].APIBackends()
	lg, err := gov.ExecutionLog(ctx)
	if err != nil || len(lg) != 1 || lg[0].Reports[res.Nodes[0].StateHash] != len(net.Nodes) || lg[0].PostStateSHA256 != res.Nodes[0].StateHash {
		t.Fatalf("execution log view %+v %v", lg, err)
	}
	for i, nd := range net.Nodes {
		_, upg, _ := nd.APIBackends()
		sv, err := upg.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sv.Version != "1.2.0" || sv.StateHash != res.Nodes[0].StateHash {
			t.Fatalf("node %d: version %s hash %s", i, sv.Version, sv.StateHash)
		}
		var doc struct {
			Global struct {
				Nodes map[string]map[string]any `json:"nodes"`
			} `json:"global"`
		}
		if err := json.Unmarshal(sv.State, &doc); err != nil {
			t.Fatal(err)
		}
		for id, m := range doc.Global.Nodes {
			if m["new_feature_enabled"] != true {
				t.Fatalf("node %d: %s has no feature flag: %v", i, id, m)
			}
		}
	}
}

// propose imports pkg on node 0 and proposes it; hash overrides the
// package hash when non-empty. Every running node votes for it.
func propose(t *testing.T, net *simnet.Net, pkg, version, hash string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gov, _, pkgs := net.Nodes[0].APIBackends()
	f, err := os.Open(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := pkgs.AddPackage(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if hash == "" {
		hash = info.SHA256
	}
	p, err := gov.Propose(ctx, httpapi.ProposeRequest{
		Title: "e2e", Version: version, PackageURL: info.URL, PackageHash: hash, PackageSize: info.Size,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range net.Nodes {
		if nd == nil {
			continue
		}
		g, _, _ := nd.APIBackends()
		testutil.WaitFor(t, 30*time.Second, "proposal visible on node", func() bool {
			_, err := g.Proposal(ctx, p.ProposalID)
			return err == nil
		})
		if _, err := g.Vote(ctx, p.ProposalID, "approval"); err != nil {
			t.Fatalf("node %d vote: %v", i, err)
		}
	}
	return p.ProposalID
}

// waitExecuted waits until every running node has executed seq.
func waitExecuted(t *testing.T, net *simnet.Net, seq uint64) {
	t.Helper()
	testutil.WaitFor(t, 90*time.Second, "entry executed on every node", func() bool {
		for _, nd := range net.Nodes {
			if nd != nil && nd.Upgrades().LastExecutedSeq() < seq {
				return false
			}
		}
		return true
	})
}

// outcome is a node's record of entry seq and its state.
func outcome(t *testing.T, net *simnet.Net, i int, seq uint64) (success bool, class, version, hash string) {
	t.Helper()
	nd := net.Nodes[i]
	n := 0
	for _, h := range nd.Upgrades().History() {
		if h.Seq == seq && h.Event == upgrade.EventUpgrade {
			success, class = h.Success, h.ErrorClass
			n++
		}
	}
	if n != 1 {
		t.Fatalf("node %d executed seq %d %d times", i, seq, n)
	}
	st := nd.Upgrades().Status()
	return success, class, st.CurrentVersion, st.StateSHA256
}

// assertSameFailure checks that entry seq failed on every node with the
// same error class and left version and state as they were.
func assertSameFailure(t *testing.T, net *simnet.Net, seq uint64, wantVersion string) {
	t.Helper()
	_, class0, _, hash0 := outcome(t, net, 0, seq)
	for i := range net.Nodes {
		ok, class, v, h := outcome(t, net, i, seq)
		if ok || class != class0 || class == "" || v != wantVersion || h != hash0 {
			t.Fatalf("node %d: success=%v class=%q version=%s hash=%s; node 0: class=%q hash=%s", i, ok, class, v, h, class0, hash0)
		}
	}
}

// A package whose bytes do not match its hash can never be verified, so
// no validator attests its entry: the leader voids the seq, every node
// skips it as void (nothing runs, the state stays) and the log goes on.
// It runs under -short too: the package never reaches the sandbox, so the
// whole multi-node path (gossip, raft, attest/void, bitswap, executor)
// runs under the race detector in CI at little cost.
func TestHashMismatchIsVoided(t *testing.T) {
	net := startNet(t, 6, 4)
	before := net.Nodes[0].Upgrades().Status().StateSHA256
	wrong := sha256.Sum256([]byte("not the package"))
	pkg := filepath.Join(t.TempDir(), "tiny.wasm")
	if err := os.WriteFile(pkg, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for seq, version := range []string{"1.2.0", "1.3.0"} {
		propose(t, net, pkg, version, "sha256:"+hex.EncodeToString(wrong[:]))
		waitExecuted(t, net, uint64(seq+1))
	}
	for i, nd := range net.Nodes {
		log := nd.Gossip().ExecutionLog()
		if len(log) != 2 || !log[0].Void || !log[1].Void {
			t.Fatalf("node %d execution log %+v, want two void entries", i, log)
		}
		voids := 0
		for _, h := range nd.Upgrades().History() {
			switch h.Event {
			case upgrade.EventVoid:
				voids++
			case upgrade.EventUpgrade:
				t.Fatalf("node %d ran an upgrade: %+v", i, h)
			}
		}
		if st := nd.Upgrades().Status(); voids != 2 || st.StateSHA256 != before || st.CurrentVersion != "1.0.0" {
			t.Fatalf("node %d: %d voids, version %s, state %s", i, voids, st.CurrentVersion, st.StateSHA256)
		}
	}
}

func TestTrappingPackageRollsBackEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	net := startNet(t, 6, 3)
	propose(t, net, example(t, "hostile-trap"), "1.2.0", "")
	waitExecuted(t, net, 1)
	assertSameFailure(t, net, 1, "1.0.0")
}

// A node that is down while the network upgrades catches up from the
// execution log after restart; a node stopped while the entry executes
// ends in the same state without running the entry twice.
func TestLateAndCrashedNodesConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	net := startNet(t, 7, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const late, crashed = 6, 5
	if err := net.StopNode(ctx, late); err != nil {
		t.Fatal(err)
	}
	id := propose(t, net, example(t, "add-feature-flag"), "1.2.0", "")
	// Stop the other node as soon as the entry is final there: it is
	// fetching or executing it.
	testutil.WaitFor(t, 90*time.Second, "entry final on the crashing node", func() bool {
		for _, e := range net.Nodes[crashed].Gossip().ExecutionLog() {
			if e.ProposalID == id {
				return true
			}
		}
		return false
	})
	if err := net.StopNode(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	waitExecuted(t, net, 1)
	for _, i := range []int{late, crashed} {
		if err := net.RestartNode(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	waitExecuted(t, net, 1)
	_, _, _, want := outcome(t, net, 0, 1)
	for i := range net.Nodes {
		ok, _, v, h := outcome(t, net, i, 1)
		if !ok || v != "1.2.0" || h != want {
			t.Fatalf("node %d: success=%v version=%s hash=%s, want 1.2.0 %s", i, ok, v, h, want)
		}
	}
}

// buildTestdata builds a test-only guest from simnet/testdata with the Go
// toolchain.
func buildTestdata(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// An executed upgrade can change governance: the add-validator package
// makes a member a validator. Every node re-reads the rules, raft adds the
// new voter, and the next entry is only final once the grown validator set
// (both validators) has ratified it.
func TestUpgradeChangesValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	net := startNet(t, 4, 1)
	pkg := buildTestdata(t, "add-validator")
	for round, version := range []string{"1.1.0", "1.2.0"} {
		seq := uint64(round + 1)
		propose(t, net, pkg, version, "")
		waitExecuted(t, net, seq)
		want := round + 2
		_, _, _, hash0 := outcome(t, net, 0, seq)
		for i := range net.Nodes {
			ok, class, v, h := outcome(t, net, i, seq)
			if !ok || v != version || h != hash0 {
				t.Fatalf("round %d node %d: success=%v class=%s version=%s", round, i, ok, class, v)
			}
			if got := len(net.Nodes[i].Rules().Validators); got != want {
				t.Fatalf("round %d node %d: %d validators in the rules, want %d", round, i, got, want)
			}
		}
		// Every validator, old and new, is a raft member: its FSM holds
		// the entries; members run no raft and hold none.
		vals := map[string]bool{}
		for _, v := range net.Nodes[0].Rules().Validators {
			vals[v.String()] = true
		}
		testutil.WaitFor(t, 30*time.Second, "every validator's raft FSM holds the log", func() bool {
			for _, nd := range net.Nodes {
				n := len(nd.Raft().Slots())
				if vals[nd.ID().String()] && n != int(seq) || !vals[nd.ID().String()] && n != 0 {
					return false
				}
			}
			return true
		})
	}
	// Entry 2 needed both validators of that time (2 of 2); the validator
	// added by it signs it too once its FSM has it.
	e := net.Nodes[3].Gossip().ExecutionLog()[1]
	if got := len(net.Nodes[3].Gossip().Signers(2, e.Hash())); got < 2 {
		t.Fatalf("entry 2 has %d signers, want at least 2", got)
	}
}

// A package served over plain HTTP by a server that corrupts its first
// responses and cuts the next ones short: every node (validators
// preparing, executors running) gets bad bytes at first; each retries
// (or fetches from the validators that verified it), and every node ends
// with the same state hash — none commits a download fault.
func TestFlakyHTTPSameStateEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	// Validators retry a failed preparation every 5 s: give them time
	// before the leader voids the slot.
	nw := startNetWith(t, simnet.Config{Nodes: 6, Validators: 4, Tune: func(_ int, c *node.Config) {
		c.Raft.StallTimeout = 30 * time.Second
	}})
	pkg, err := os.ReadFile(example(t, "add-feature-flag"))
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		switch {
		case n <= 4: // corrupt
			b := bytes.Clone(pkg)
			b[len(b)/2] ^= 0xff
			w.Write(b)
		case n <= 7: // truncated (Content-Length promises more)
			w.Header().Set("Content-Length", fmt.Sprint(len(pkg)))
			w.Write(pkg[:len(pkg)/3])
		default:
			w.Write(pkg)
		}
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(pkg)
	gov, _, _ := nw.Nodes[0].APIBackends()
	ctx := context.Background()
	p, err := gov.Propose(ctx, httpapi.ProposeRequest{Title: "flaky", Version: "1.2.0", PackageURL: srv.URL + "/pkg.wasm",
		PackageHash: "sha256:" + hex.EncodeToString(sum[:]), PackageSize: int64(len(pkg))})
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range nw.Nodes {
		g, _, _ := nd.APIBackends()
		testutil.WaitFor(t, 30*time.Second, "proposal visible", func() bool { _, err := g.Proposal(ctx, p.ProposalID); return err == nil })
		if _, err := g.Vote(ctx, p.ProposalID, "approval"); err != nil {
			t.Fatalf("node %d vote: %v", i, err)
		}
	}
	seq := waitRanEverywhere(t, nw, p.ProposalID)
	_, _, _, want := outcome(t, nw, 0, seq)
	for i := range nw.Nodes {
		ok, class, v, h := outcome(t, nw, i, seq)
		if !ok || v != "1.2.0" || h != want {
			t.Fatalf("node %d: success=%v class=%s version=%s hash=%s, want %s", i, ok, class, v, h, want)
		}
	}
	if served.Load() < 8 {
		t.Fatalf("the server answered only %d times: the faults were not exercised", served.Load())
	}
}
