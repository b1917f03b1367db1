package upgrade

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Each hostile package is stopped by a limit of the network state with a
// specific error and leaves state and version as they were; the failure is
// recorded.
func TestHostilePackages(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	srv := examplesServer(t)
	cases := []struct {
		name, class, inErr string
		lim                genesis.Limits
	}{
		{"hostile-loop", ClassFuelExhausted, "fuel budget of 100000000 ran out", genesis.Limits{Fuel: 1e8}},
		{"hostile-membomb", ClassMemoryLimit, "out of memory", genesis.Limits{MemoryPages: 768}},
		{"hostile-readfile", ClassTrap, "/etc/passwd", genesis.Limits{}},
		{"hostile-import", ClassBadModule, "env.evil", genesis.Limits{}},
		{"hostile-nonjson", ClassInvalidOutput, "not a JSON object", genesis.Limits{}},
		{"hostile-bigoutput", ClassOutputLimit, "limit", genesis.Limits{MaxOutputBytes: 1 << 20}},
		{"hostile-trap", ClassTrap, "nil pointer", genesis.Limits{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, _ := initManagerLimits(t, nil, tc.lim)
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
			if tc.class == ClassFuelExhausted && (r.FuelUsed <= 1e8 || h[0].FuelUsed != r.FuelUsed) {
				t.Fatalf("fuel used %d (history %d), want just over the budget", r.FuelUsed, h[0].FuelUsed)
			}
		})
	}
}

// In-process isolation stops a loop at the wall-clock safety net with
// WithCloseOnContextDone; that is transient, like in a child process.
func TestInProcessSafetyNet(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	m, _ := initManagerLimits(t, func(c *Config) {
		c.Isolation = IsolationInProcess
		c.Timeout = time.Second
	}, genesis.Limits{Fuel: 1 << 62})
	srv := examplesServer(t)
	r, err := m.Test(context.Background(), pkgFor(t, srv, "hostile-loop", "2.0.0"))
	if !isTransient(err) || !strings.Contains(err.Error(), "safety net") {
		t.Fatalf("want a transient safety-net error, got %+v %v", r, err)
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
	return errors.Is(err, errTransient) && classOf(err) == ""
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
	m.Close(context.Background())
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
