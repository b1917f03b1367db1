package upgrade

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// burnCPU keeps every CPU busy until the returned stop is called.
func burnCPU() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < runtime.NumCPU(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for !done.Load() {
				for j := 0; j < 1e5; j++ {
					x += j
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// A guest that runs past its fuel budget fails the same way — class, fuel
// used, message, state — on nodes with different safety nets and load and
// in either isolation mode: the outcome depends on the state, not on the
// machine.
func TestFuelExhaustedIsDeterministic(t *testing.T) {
	t.Parallel() // compiles its own modules; cold compiles are slow under -race
	srv := examplesServer(t)
	lim := genesis.Limits{Fuel: 3e8}
	p := pkgFor(t, srv, "hostile-loop", "2.0.0")
	st := withLimits(t, genesisState(t, 3), lim)
	run := func(mutate func(*Config), load bool) Result {
		m, _ := initManagerState(t, mutate, st)
		if load {
			defer burnCPU()()
		}
		r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
		if err != nil {
			t.Fatalf("want a committed failure, got %v", err)
		}
		return r
	}
	quiet := run(func(c *Config) { c.Timeout = 20 * time.Second }, false)
	loaded := run(func(c *Config) { c.Timeout = 90 * time.Second }, true)
	inProcess := run(func(c *Config) { c.Isolation = IsolationInProcess; c.Timeout = time.Minute }, false)
	t.Logf("quiet %v, loaded %v, in-process %v; fuel used %d", quiet.Duration, loaded.Duration, inProcess.Duration, quiet.FuelUsed)
	if quiet.ErrorClass != ClassFuelExhausted || quiet.FuelUsed <= uint64(lim.Fuel) {
		t.Fatalf("quiet node: %+v", quiet)
	}
	for _, r := range []Result{loaded, inProcess} {
		if r.ErrorClass != quiet.ErrorClass || r.FuelUsed != quiet.FuelUsed || r.Error != quiet.Error ||
			r.PostStateSHA256 != quiet.PostStateSHA256 || r.Success {
			t.Fatalf("outcomes differ:\n%+v\n%+v", quiet, r)
		}
	}
}

// A guest that needs more wall time than a node's safety net gets a
// transient error on that node: nothing is committed and the entry can be
// retried (on a faster or idler machine, or with a larger timeout).
func TestSafetyNetIsTransient(t *testing.T) {
	t.Parallel()
	srv := examplesServer(t)
	m, _ := initManagerLimits(t, func(c *Config) { c.Timeout = time.Second }, genesis.Limits{Fuel: 1 << 62})
	_, _, sum0 := m.State()
	_, err := m.Execute(context.Background(), Entry{Seq: 1, Package: pkgFor(t, srv, "hostile-loop", "2.0.0")})
	if !isTransient(err) || !strings.Contains(err.Error(), "safety net") {
		t.Fatalf("want a transient safety-net error, got %v", err)
	}
	if _, _, sum := m.State(); sum != sum0 || m.LastExecutedSeq() != 0 || len(m.History()) != 0 {
		t.Fatalf("changed: seq %d history %v", m.LastExecutedSeq(), m.History())
	}
}

// The limits come from the state the entry runs on: two states with
// different limits give different outcomes, each the same on every node.
func TestLimitsFromState(t *testing.T) {
	t.Parallel()
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	cases := []struct {
		name  string
		lim   genesis.Limits
		class string
		inErr string
	}{
		{"defaults", genesis.Limits{}, "", ""},
		{"tiny output", genesis.Limits{MaxOutputBytes: 100}, ClassOutputLimit, "the limit is 100"},
		{"tiny memory", genesis.Limits{MemoryPages: 16}, ClassMemoryLimit, ""},
		{"tiny fuel", genesis.Limits{Fuel: 1000}, ClassFuelExhausted, "fuel budget of 1000"},
		{"small package limit", genesis.Limits{MaxPackageBytes: 1000}, ClassSizeLimit, "max_package_bytes of 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var first Result
			st := withLimits(t, genesisState(t, 3), tc.lim)
			for i := 0; i < 2; i++ {
				m, _ := initManagerState(t, nil, st)
				r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
				if err != nil {
					t.Fatal(err)
				}
				if r.ErrorClass != tc.class || !strings.Contains(r.Error, tc.inErr) || r.Success != (tc.class == "") {
					t.Fatalf("want class %q with %q, got %+v", tc.class, tc.inErr, r)
				}
				if i == 0 {
					first = r
					t.Logf("%s: fuel used %d; %s", tc.name, r.FuelUsed, r.Error)
				} else if r.FuelUsed != first.FuelUsed || r.PostStateSHA256 != first.PostStateSHA256 || r.Error != first.Error {
					t.Fatalf("two nodes differ:\n%+v\n%+v", first, r)
				}
			}
			if tc.class == "" && first.FuelUsed == 0 {
				t.Fatal("no fuel reported for a successful run")
			}
		})
	}
}

// A package above the network's max_package_bytes fails deterministically
// without being downloaded.
func TestPackageLimitBeforeDownload(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	m, _ := initManagerLimits(t, nil, genesis.Limits{MaxPackageBytes: 1 << 20})
	p := Package{ProposalID: "big", Version: "2.0.0", URL: srv.URL + "/big.wasm",
		SHA256: strings.Repeat("ab", 32), Size: 2 << 20}
	r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: p})
	if err != nil || r.ErrorClass != ClassSizeLimit || hits.Load() != 0 {
		t.Fatalf("%+v %v (downloads %d)", r, err, hits.Load())
	}
}

// A network limit above a node's safety cap is transient and names the
// cap to raise; nothing is committed.
func TestLocalCapIsTransient(t *testing.T) {
	srv := examplesServer(t)
	p := pkgFor(t, srv, "add-feature-flag", "1.2.0")
	unsized := p
	unsized.Size = 0
	cases := []struct {
		name  string
		lim   genesis.Limits
		p     Package
		field string
	}{
		{"memory", genesis.Limits{MemoryPages: 8192}, p, "memory_limit_bytes"},
		{"output", genesis.Limits{MaxOutputBytes: 128 << 20}, p, "max_output_bytes"},
		{"unsized package", genesis.Limits{MaxPackageBytes: 128 << 20}, unsized, "max_package_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := initManagerLimits(t, nil, tc.lim)
			_, err := m.Execute(context.Background(), Entry{Seq: 1, Package: tc.p})
			if !isTransient(err) || !errors.Is(err, errLocalCap) || !strings.Contains(err.Error(), "raise "+tc.field) {
				t.Fatalf("want a transient errLocalCap naming %s, got %v", tc.field, err)
			}
			if m.LastExecutedSeq() != 0 || len(m.History()) != 0 {
				t.Fatal("committed")
			}
			if _, err := m.Test(context.Background(), tc.p); !errors.Is(err, errLocalCap) {
				t.Fatalf("dry run: %v", err)
			}
		})
	}
}

// The dry run uses the current state's limits and reports the fuel.
func TestDryRunUsesStateLimits(t *testing.T) {
	srv := examplesServer(t)
	m, _ := initManagerLimits(t, nil, genesis.Limits{Fuel: 1000})
	r, err := m.Test(context.Background(), pkgFor(t, srv, "add-feature-flag", "1.2.0"))
	if err != nil || r.ErrorClass != ClassFuelExhausted || r.FuelUsed <= 1000 || r.Limits.Fuel != 1000 {
		t.Fatalf("%+v %v", r, err)
	}
}

// A module that writes the global the meter would add (to refill its
// fuel) is refused as bad_module.
func TestFuelRefillRefused(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("internal", "meter", "testdata", "refill-global.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "refill.wasm")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serveFiles(t, dir)
	h, n := fileHash(t, path)
	m, _ := initManager(t, nil)
	r, err := m.Execute(context.Background(), Entry{Seq: 1, Package: Package{ProposalID: "refill", Version: "2.0.0",
		URL: srv.URL + "/refill.wasm", SHA256: h, Size: n}})
	if err != nil || r.ErrorClass != ClassBadModule || !strings.Contains(r.Error, "global index 1 out of range") {
		t.Fatalf("%+v %v", r, err)
	}
}

// A sandbox process killed mid-run (as by the OS OOM killer) is transient:
// state, version, seq and history stay as they were.
func TestChildKilledIsTransient(t *testing.T) {
	t.Parallel()
	srv := examplesServer(t)
	m, _ := initManagerLimits(t, nil, genesis.Limits{Fuel: 1 << 62})
	v0, _, sum0 := m.State()
	ctx := context.WithValue(context.Background(), childRunningKey{}, func(pid int) {
		time.AfterFunc(200*time.Millisecond, func() {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill() // SIGKILL, as the OOM killer sends
			}
		})
	})
	_, err := m.Execute(ctx, Entry{Seq: 1, Package: pkgFor(t, srv, "hostile-loop", "2.0.0")})
	if !isTransient(err) || !strings.Contains(err.Error(), "killed by signal") {
		t.Fatalf("want a transient error naming the signal, got %v", err)
	}
	if v, _, sum := m.State(); v != v0 || sum != sum0 || m.LastExecutedSeq() != 0 || len(m.History()) != 0 {
		t.Fatalf("changed: %s %s seq %d history %v", v, sum, m.LastExecutedSeq(), m.History())
	}
}

func TestChildDeathMessages(t *testing.T) {
	if s := childDeath(errors.New("exit status 2"), "fatal error: runtime: out of memory", 1<<30); !strings.Contains(s, "ran out of memory under its data limit of 1024 MiB") {
		t.Fatal(s)
	}
	if s := childDeath(nil, "", 0); !strings.Contains(s, "without an answer") {
		t.Fatal(s)
	}
}
