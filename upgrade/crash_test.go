package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
)

var errCrash = errors.New("injected crash")

func crashAt(step string) func(string) error {
	return func(s string) error {
		if s == step {
			return errCrash
		}
		return nil
	}
}

// copyDir copies a data directory (a crash test starts from a template).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func snapOf(t *testing.T, version string, state []byte, seq uint64, hist int) *snapshot {
	t.Helper()
	canon, sum, err := canonicalState(state)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]HistoryEntry, hist)
	for i := range h {
		h[i] = HistoryEntry{Event: EventUpgrade, Seq: uint64(i + 1), Version: version}
	}
	return &snapshot{Version: version, State: canon, StateSHA256: sum, LastSeq: seq, History: h}
}

// A crash at any step of a commit leaves the old snapshot or the new one,
// never a mix; the new one exactly when the journal rename happened.
func TestCommitCrashAtEveryStep(t *testing.T) {
	old := snapOf(t, "1.0.0", []byte(`{"global":{"version":"1.0.0","x":1}}`), 0, 0)
	next := snapOf(t, "1.2.0", []byte(`{"global":{"version":"1.2.0","x":2}}`), 1, 1)
	for i, step := range commitSteps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := (&store{dir: dir}).commit(old); err != nil {
				t.Fatal(err)
			}
			committed, err := (&store{dir: dir, fail: crashAt(step)}).commit(next)
			if !errors.Is(err, errCrash) {
				t.Fatalf("no crash: %v", err)
			}
			wantNew := i > slices.Index(commitSteps, "journal:rename")
			if committed != wantNew {
				t.Fatalf("committed=%v, want %v", committed, wantNew)
			}
			got, err := (&store{dir: dir}).load()
			if err != nil {
				t.Fatal(err)
			}
			want := old
			if wantNew {
				want = next
			}
			if got.Version != want.Version || got.StateSHA256 != want.StateSHA256 || got.LastSeq != want.LastSeq ||
				len(got.History) != len(want.History) || string(got.State) != string(want.State) {
				t.Fatalf("after crash at %s: %s seq %d hist %d, want %s seq %d hist %d",
					step, got.Version, got.LastSeq, len(got.History), want.Version, want.LastSeq, len(want.History))
			}
			// The recovered store is clean: no journal, no temp files.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() == journalFile || strings.HasPrefix(e.Name(), atomicfile.TempPrefix) {
					t.Fatalf("left behind: %s", e.Name())
				}
			}
		})
	}
}

// A crash while executing leaves the old or the new pair; retrying
// completes the entry exactly once.
func TestExecuteCrash(t *testing.T) {
	srv := examplesServer(t)
	tmpl, _ := initManager(t, nil)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	tmpl.Close(context.Background())
	for _, step := range []string{"backup", "journal:rename", "state", "meta:rename", "clear"} {
		t.Run(step, func(t *testing.T) {
			dir := copyDir(t, tmpl.cfg.DataDir)
			m := newManager(t, dir, nil, Deps{})
			m.store.fail = crashAt(step)
			r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
			m.Close(context.Background())
			m2 := newManager(t, dir, nil, Deps{})
			v, state, _ := m2.State()
			if sv := stateVersion(state); sv != v {
				t.Fatalf("mixed pair: version %s, state %s", v, sv)
			}
			switch v {
			case "1.0.0":
				if err == nil || m2.LastExecutedSeq() != 0 || len(m2.History()) != 0 {
					t.Fatalf("old pair but seq %d, history %d, err %v", m2.LastExecutedSeq(), len(m2.History()), err)
				}
				r, err = m2.Execute(context.Background(), Entry{Seq: 1, Package: p})
				if err != nil || !r.Success {
					t.Fatalf("retry: %+v %v", r, err)
				}
			case "1.2.0":
				if err != nil || !r.Success || m2.LastExecutedSeq() != 1 || len(m2.History()) != 1 {
					t.Fatalf("new pair but seq %d, history %d, r %+v err %v", m2.LastExecutedSeq(), len(m2.History()), r, err)
				}
			default:
				t.Fatalf("version %s", v)
			}
			if r, _ := m2.Execute(context.Background(), Entry{Seq: 1, Package: p}); !r.AlreadyExecuted {
				t.Fatal("executed twice")
			}
		})
	}
}

// Rollback restores the backup (state and version together), pauses the
// executor across restarts, and a crash at any step leaves one consistent
// pair.
func TestRollback(t *testing.T) {
	srv := examplesServer(t)
	m, genesisSt := initManager(t, nil)
	_, _, sum0 := m.State()
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	if r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p}); err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}
	_, _, sum1 := m.State()
	if _, err := m.Rollback(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown proposal: %v", err)
	}
	m.Close(context.Background())
	tmpl := m.cfg.DataDir

	t.Run("rollback, pause, resume", func(t *testing.T) {
		m := newManager(t, copyDir(t, tmpl), nil, Deps{})
		rr, err := m.Rollback(context.Background(), p.ProposalID)
		if err != nil || rr.RestoredVersion != "1.0.0" || rr.PreviousVersion != "1.2.0" || rr.StateSHA256 != sum0 {
			t.Fatalf("%+v %v", rr, err)
		}
		v, st, sum := m.State()
		if v != "1.0.0" || sum != sum0 || string(st) != string(genesisSt) {
			t.Fatalf("restored %s %s", v, sum)
		}
		if !m.Status().Paused {
			t.Fatal("not paused")
		}
		m.Close(context.Background())
		m = newManager(t, m.cfg.DataDir, nil, Deps{})
		if _, err := m.Execute(context.Background(), Entry{Seq: 2, Package: p}); !errors.Is(err, ErrPaused) {
			t.Fatalf("paused executor ran: %v", err)
		}
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
		h := m.History()
		if len(h) != 3 || h[1].Event != EventRollback || h[2].Event != EventResume || m.Status().Paused {
			t.Fatalf("history %+v", h)
		}
		// The backup of 1.2.0 was taken before leaving it.
		if b, _ := os.ReadFile(filepath.Join(m.dir, versionsDir, "1.2.0", stateFile)); hashOrEmpty(b) != sum1 {
			t.Fatal("no backup of 1.2.0")
		}
		// Executing again works: seq 2 re-applies the upgrade.
		if r, err := m.Execute(context.Background(), Entry{Seq: 2, Package: p}); err != nil || !r.Success || r.PostStateSHA256 != sum1 {
			t.Fatalf("%+v %v", r, err)
		}
	})
	for _, step := range append([]string{"backup", "backup:rename"}, commitSteps...) {
		t.Run("crash at "+step, func(t *testing.T) {
			dir := copyDir(t, tmpl)
			m := newManager(t, dir, nil, Deps{})
			m.store.fail = crashAt(step)
			_, err := m.Rollback(context.Background(), p.ProposalID)
			m.Close(context.Background())
			m2 := newManager(t, dir, nil, Deps{})
			v, _, sum := m2.State()
			st := m2.Status()
			switch {
			case v == "1.2.0" && sum == sum1 && !st.Paused && len(m2.History()) == 1 && err != nil:
			case v == "1.0.0" && sum == sum0 && st.Paused && len(m2.History()) == 2:
			default:
				t.Fatalf("crash at %s: %s %s paused=%v history=%d err=%v", step, v, sum, st.Paused, len(m2.History()), err)
			}
		})
	}
}

func hashOrEmpty(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	_, s, err := canonicalState(b)
	if err != nil {
		return fmt.Sprint(err)
	}
	return s
}
