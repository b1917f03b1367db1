package upgrade

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Each hostile package is stopped within its limit with a specific error
// and leaves state and version as they were; the failure is recorded.
func TestHostilePackages(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	srv := examplesServer(t)
	cases := []struct {
		name, class, inErr string
		mutate             func(*Config)
		within             time.Duration
	}{
		{"hostile-loop", ClassTimeout, "deadline", func(c *Config) { c.Timeout = 2 * time.Second }, 0},
		{"hostile-membomb", ClassMemoryLimit, "out of memory", func(c *Config) { c.MemoryLimitBytes = 48 << 20 }, 0},
		{"hostile-readfile", ClassTrap, "/etc/passwd", nil, 0},
		{"hostile-import", ClassBadModule, "env.evil", nil, 0},
		{"hostile-nonjson", ClassInvalidOutput, "not a JSON object", nil, 0},
		{"hostile-bigoutput", ClassOutputLimit, "limit", func(c *Config) { c.MaxOutputBytes = 1 << 20 }, 0},
		{"hostile-trap", ClassTrap, "nil pointer", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, _ := initManager(t, tc.mutate)
			v0, _, sum0 := m.State()
			p := pkgFor(t, srv, tc.name, "2.0.0")
			r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
			if err != nil {
				t.Fatalf("want a deterministic failure, got error %v", err)
			}
			t.Logf("%s: %s (%v)", tc.name, r.Error, r.Duration)
			if r.Success || r.ErrorClass != tc.class || !strings.Contains(r.Error, tc.inErr) {
				t.Fatalf("want class %s with %q, got %+v", tc.class, tc.inErr, r)
			}
			v, _, sum := m.State()
			if v != v0 || sum != sum0 || r.PostStateSHA256 != sum0 || r.Version != v0 {
				t.Fatalf("state changed: %s %s -> %s %s", v0, sum0, v, sum)
			}
			h := m.History()
			if len(h) != 1 || h[0].Success || h[0].ErrorClass != tc.class || m.LastExecutedSeq() != 1 {
				t.Fatalf("history %+v seq %d", h, m.LastExecutedSeq())
			}
			// Duration includes compiling (cold and under -race that
			// can take many seconds), so only a loose bound here.
			if tc.class == ClassTimeout && r.Duration > 90*time.Second {
				t.Fatalf("loop ran %v with a 2 s deadline", r.Duration)
			}
		})
	}
}

// In-process isolation stops an infinite loop with WithCloseOnContextDone.
func TestInProcessDeadline(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	m, _ := initManager(t, func(c *Config) {
		c.Isolation = IsolationInProcess
		c.Timeout = time.Second
	})
	srv := examplesServer(t)
	r, err := m.Test(context.Background(), pkgFor(t, srv, "hostile-loop", "2.0.0"))
	if err != nil || r.Success || r.ErrorClass != ClassTimeout {
		t.Fatalf("%+v %v", r, err)
	}
}

// A cancelled context is transient: nothing changes and the entry can be
// retried.
func TestCancelIsTransient(t *testing.T) {
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "hostile-loop", "2.0.0")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	_, err := m.Execute(ctx, Entry{Seq: 1, Package: p})
	if !isTransient(err) {
		t.Fatalf("want transient, got %v", err)
	}
	if m.LastExecutedSeq() != 0 || len(m.History()) != 0 {
		t.Fatalf("changed: seq %d history %v", m.LastExecutedSeq(), m.History())
	}
}

func isTransient(err error) bool {
	return errors.Is(err, ErrTransient) && ClassOf(err) == ""
}

// Close stops a running Execute; the failure is transient and nothing is
// recorded.
func TestCloseDuringExecute(t *testing.T) {
	m, _ := initManager(t, nil)
	srv := examplesServer(t)
	p := pkgFor(t, srv, "hostile-loop", "2.0.0")
	errc := make(chan error, 1)
	go func() {
		_, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
		errc <- err
	}()
	// Readers run concurrently with the executor.
	for i := 0; i < 20; i++ {
		m.Status()
		m.History()
		m.State()
	}
	m.Close()
	select {
	case err := <-errc:
		if !isTransient(err) {
			t.Fatalf("want transient, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Execute did not stop at Close")
	}
	m2 := newManager(t, m.cfg.DataDir, nil, Deps{})
	if m2.LastExecutedSeq() != 0 || len(m2.History()) != 0 {
		t.Fatal("a closed Execute recorded something")
	}
}
