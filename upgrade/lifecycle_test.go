package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A scheduled entry dry-runs and records readiness without changing the
// state; its activation runs it; a cancel only advances the seq.
func TestScheduleSkipAndActivate(t *testing.T) {
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	ctx := context.Background()
	_, _, before := m.State()

	r, err := m.Schedule(ctx, Entry{Seq: 1, EntryHash: "e1", Package: p})
	if err != nil || !r.Success || r.WouldBeSHA256 == "" || r.WouldBeSHA256 == before {
		t.Fatalf("schedule: %+v %v", r, err)
	}
	if v, _, sum := m.State(); v != "1.0.0" || sum != before {
		t.Fatalf("scheduling changed the state: %s %s", v, sum)
	}
	if r2, err := m.Schedule(ctx, Entry{Seq: 1, EntryHash: "e1", Package: p}); err != nil || !r2.AlreadyExecuted {
		t.Fatalf("schedule again: %+v %v", r2, err)
	}
	if _, err := m.Skip(ctx, Entry{Seq: 2, EntryHash: "e2"}, EventCancelled, "cancelled nothing"); err != nil {
		t.Fatal(err)
	}
	wouldBe := r.WouldBeSHA256
	r, err = m.Execute(ctx, Entry{Seq: 3, EntryHash: "e3", Package: p})
	if err != nil || !r.Success || r.PostStateSHA256 != wouldBe {
		t.Fatalf("activation: %+v %v", r, err)
	}
	h := m.History()
	if len(h) < 3 || h[len(h)-3].Event != EventScheduled || h[len(h)-2].Event != EventCancelled || h[len(h)-1].Event != EventUpgrade {
		t.Fatalf("history %+v", h)
	}
	if _, err := m.Skip(ctx, Entry{Seq: 9, EntryHash: "e9"}, EventCancelled, "gap"); !errors.Is(err, errSeqGap) {
		t.Fatalf("gap: %v", err)
	}
}

// A network rollback restores the state from before the latest upgrade
// under a higher version — from the backup, or from a state the caller
// recomputed (Replay) when the backup is gone — and refuses a version
// that does not rise or a state that does not hash to the recorded one.
func TestRollbackNetwork(t *testing.T) {
	m, genesisState := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	ctx := context.Background()
	if r, err := m.Execute(ctx, Entry{Seq: 1, EntryHash: "e1", Package: p}); err != nil || !r.Success {
		t.Fatalf("upgrade: %+v %v", r, err)
	}
	want, wantSum, err := SetVersion(genesisState, "1.3.0")
	if err != nil {
		t.Fatal(err)
	}

	// The version must rise: a deterministic failure, recorded.
	r, err := m.RollbackNetwork(ctx, Entry{Seq: 2, EntryHash: "e2"}, 1, "1.1.0", nil)
	if err != nil || r.Success || r.ErrorClass != ClassVersion {
		t.Fatalf("lower version: %+v %v", r, err)
	}

	// Without its backup the node needs the state given; nothing changes.
	backups := filepath.Join(m.cfg.DataDir, "upgrades", versionsDir)
	saved := t.TempDir()
	if err := os.Rename(backups, filepath.Join(saved, "v")); err != nil {
		t.Fatal(err)
	}
	_, _, mid := m.State()
	if _, err := m.RollbackNetwork(ctx, Entry{Seq: 3, EntryHash: "e3"}, 1, "1.3.0", nil); !errors.Is(err, ErrNeedPreState) {
		t.Fatalf("no backup: %v", err)
	}
	if _, err := m.RollbackNetwork(ctx, Entry{Seq: 3, EntryHash: "e3"}, 1, "1.3.0", []byte(`{"global":{"version":"9.9.9"},"nodes":{}}`)); !errors.Is(err, ErrNeedPreState) {
		t.Fatalf("wrong state given: %v", err)
	}
	if _, _, sum := m.State(); sum != mid {
		t.Fatal("a refused rollback changed the state")
	}
	// Replay from the genesis state gives the state after entry 1 again.
	_, replayed, err := m.Replay(ctx, genesisState, "1.0.0", p)
	if err != nil {
		t.Fatal(err)
	}
	if h := m.History(); replayed != h[0].PostStateSHA256 {
		t.Fatalf("replay gives %s, entry 1 gave %s", replayed, h[0].PostStateSHA256)
	}
	r, err = m.RollbackNetwork(ctx, Entry{Seq: 3, EntryHash: "e3"}, 1, "1.3.0", genesisState)
	if err != nil || !r.Success || r.Version != "1.3.0" || r.PostStateSHA256 != wantSum {
		t.Fatalf("rollback: %+v %v", r, err)
	}
	if _, state, _ := m.State(); string(state) != string(want) {
		t.Fatalf("state after rollback:\n%s\nwant\n%s", state, want)
	}
	if h := m.History(); h[len(h)-1].Event != EventNetworkRollback || h[len(h)-1].PreStateSHA256 != mid {
		t.Fatalf("history %+v", h[len(h)-1])
	}
}
