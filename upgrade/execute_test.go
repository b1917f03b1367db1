package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestExecuteAddFeatureFlag(t *testing.T) {
	m, st := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	_, _, before := m.State()
	ctx := context.Background()

	r, err := m.Execute(ctx, Entry{Seq: 1, Package: p})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Success || r.Version != "1.2.0" || r.PreviousVersion != "1.0.0" {
		t.Fatalf("result %+v", r)
	}
	v, state, sum := m.State()
	if v != "1.2.0" || sum != r.PostStateSHA256 || sum == before {
		t.Fatalf("state %s %s (result %s)", v, sum, r.PostStateSHA256)
	}
	g := globalOf(t, state)
	if g["version"] != "1.2.0" {
		t.Fatalf("global.version %v", g["version"])
	}
	nodes := g["nodes"].(map[string]any)
	if len(nodes) != 3 {
		t.Fatalf("nodes %v", nodes)
	}
	for id, n := range nodes {
		if n.(map[string]any)["new_feature_enabled"] != true {
			t.Fatalf("node %s not flagged: %v", id, n)
		}
	}
	// Files on disk.
	dir := filepath.Join(m.cfg.DataDir, "upgrades")
	if b, _ := os.ReadFile(filepath.Join(dir, versionFile)); string(b) != "1.2.0\n" {
		t.Fatalf("current_version.txt %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, stateFile)); string(b) != string(state) {
		t.Fatal("network_state.json differs from State()")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, versionsDir, "1.0.0", stateFile)); string(b) != string(st) {
		t.Fatal("backup of 1.0.0 differs from the genesis state")
	}
	if _, err := os.Stat(filepath.Join(dir, journalFile)); !os.IsNotExist(err) {
		t.Fatalf("journal left behind: %v", err)
	}
	// Replays and gaps.
	again, err := m.Execute(ctx, Entry{Seq: 1, Package: p})
	if err != nil || !again.AlreadyExecuted || !again.Success {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if _, err := m.Execute(ctx, Entry{Seq: 3, Package: p}); !errors.Is(err, errSeqGap) {
		t.Fatalf("gap: %v", err)
	}
	// Same version again does not raise it: a deterministic failure.
	r2, err := m.Execute(ctx, Entry{Seq: 2, Package: p})
	if err != nil || r2.Success || r2.ErrorClass != ClassVersion || r2.PostStateSHA256 != sum {
		t.Fatalf("not raised: %+v %v", r2, err)
	}
	st1 := m.Status()
	if st1.CurrentVersion != "1.2.0" || st1.TotalUpgrades != 1 || st1.LastExecutedSeq != 2 ||
		!st1.WasmAvailable || st1.IPFSAvailable || st1.LastUpgrade == nil || st1.LastUpgrade.Seq != 2 {
		t.Fatalf("status %+v", st1)
	}
	// Restart keeps everything.
	m.Close(context.Background())
	m2 := newManager(t, m.cfg.DataDir, nil, Deps{})
	if err := m2.InitState("1.0.0", st); err != nil {
		t.Fatal(err)
	}
	v2, _, sum2 := m2.State()
	if v2 != "1.2.0" || sum2 != sum || m2.LastExecutedSeq() != 2 {
		t.Fatalf("after restart %s %s seq %d", v2, sum2, m2.LastExecutedSeq())
	}
	h := m2.History()
	if len(h) != 2 || !h[0].Success || h[1].Success || h[0].ExecutedAt != "2026-01-02T03:04:05Z" {
		t.Fatalf("history %+v", h)
	}
}
