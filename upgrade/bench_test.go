package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// benchState is a valid network state of about size bytes: the genesis
// state plus filler nodes in global.nodes.
func benchState(b testing.TB, size int) []byte {
	b.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(genesisState(b, 3)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		b.Fatal(err)
	}
	nodes := doc["global"].(map[string]any)["nodes"].(map[string]any)
	for i := 0; ; i++ {
		nodes[fmt.Sprintf("node-%07d", i)] = map[string]any{"joined": "genesis", "region": "eu-west", "score": i, "tags": []any{"a", "b"}}
		if i%1000 == 999 {
			out, _ := json.Marshal(doc)
			if len(out) >= size {
				return out
			}
		}
	}
}

// nativeTransform is add-feature-flag's transform compiled for the host.
func nativeTransform(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var state map[string]any
	if err := dec.Decode(&state); err != nil {
		return nil, err
	}
	global, ok := state["global"].(map[string]any)
	if !ok {
		return nil, errors.New("state has no global object")
	}
	if nodes, ok := global["nodes"].(map[string]any); ok {
		for _, n := range nodes {
			if node, ok := n.(map[string]any); ok {
				node["new_feature_enabled"] = true
			}
		}
	}
	global["version"] = "1.2.0"
	return json.Marshal(state)
}

// BenchmarkUpgrade runs add-feature-flag's upgrade() on 1 MiB and 10 MiB
// states natively, in-process (with and without WithCloseOnContextDone)
// and in a child process, and reports the host overhead (instantiate, copy
// in, copy out; for the child also process start and pipes) as a share of
// the total.
func BenchmarkUpgrade(b *testing.B) {
	wasmPath := example(b, "add-feature-flag")
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		b.Fatal(err)
	}
	metered, _, err := instrument(wasm)
	if err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	lim := limits{MemoryLimitBytes: 1 << 30, MaxOutputBytes: 256 << 20, Fuel: 1 << 62}
	ctx := context.Background()
	for _, size := range []int{1 << 20, 10 << 20} {
		state := benchState(b, size)
		name := fmt.Sprintf("%dMiB", size>>20)
		b.Run(name+"/native", func(b *testing.B) {
			b.SetBytes(int64(len(state)))
			for i := 0; i < b.N; i++ {
				if _, err := nativeTransform(state); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, closeOnDone := range []bool{false, true} {
			sub := "inprocess"
			if closeOnDone {
				sub = "inprocess-closeondone"
			}
			b.Run(name+"/"+sub, func(b *testing.B) {
				e, err := newEngine(ctx, cache, lim, closeOnDone)
				if err != nil {
					b.Fatal(err)
				}
				defer e.close(ctx)
				cm, _, err := e.compile(ctx, metered) // warm the cache
				if err != nil {
					b.Fatal(err)
				}
				cm.Close(ctx)
				b.SetBytes(int64(len(state)))
				var host, total time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					_, _, tm, err := e.run(ctx, call{Op: "upgrade", Metered: metered, State: state, Limits: lim, Timeout: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					total += time.Since(t0) - tm.Compile
					host += tm.Instantiate + tm.CopyIn + tm.CopyOut
				}
				b.ReportMetric(100*float64(host)/float64(total), "host-%")
			})
		}
		b.Run(name+"/process", func(b *testing.B) {
			req := childRequest{Op: "upgrade", WasmPath: wasmPath, CacheDir: cache, Limits: lim}
			if _, _, _, err := runInChild(ctx, req, state, time.Minute); err != nil { // warm the cache
				b.Fatal(err)
			}
			b.SetBytes(int64(len(state)))
			var call, total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				_, _, tm, err := runInChild(ctx, req, state, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(t0)
				call += tm.Call
			}
			b.ReportMetric(100*float64(total-call)/float64(total), "host-%")
		})
	}
}

// BenchmarkCompile loads add-feature-flag (as instrumented by the fuel
// meter, like the sandbox) cold (empty cache) and cached.
func BenchmarkCompile(b *testing.B) {
	raw, err := os.ReadFile(example(b, "add-feature-flag"))
	if err != nil {
		b.Fatal(err)
	}
	wasm, _, err := instrument(raw)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	load := func(b *testing.B, dir string) {
		e, err := newEngine(ctx, dir, limits{}, false)
		if err != nil {
			b.Fatal(err)
		}
		cm, _, err := e.compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		cm.Close(ctx)
		e.close(ctx)
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			load(b, b.TempDir())
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		load(b, dir)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			load(b, dir)
		}
	})
}

// BenchmarkMeter runs add-feature-flag in-process (no CloseOnContextDone;
// compiled once; instantiate, _initialize, alloc, upgrade per op) on the
// 3-node devnet genesis state ("seed") and a 1 MiB state, with the
// fuel-metered module the sandbox runs and with the original module, and
// reports the fuel one call uses (deterministic). The ratio of the two
// ns/op is the metering overhead.
func BenchmarkMeter(b *testing.B) {
	wasm, err := os.ReadFile(example(b, "add-feature-flag"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	metered, _, err := instrument(wasm)
	if err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	lim := limits{MemoryLimitBytes: 1 << 30, MaxOutputBytes: 256 << 20, Fuel: 1 << 62}
	states := []struct {
		name  string
		state []byte
	}{{"seed", genesisState(b, 3)}, {"1MiB", benchState(b, 1<<20)}}
	for _, st := range states {
		b.Run(st.name+"/metered", func(b *testing.B) {
			e, err := newEngine(ctx, cache, lim, false)
			if err != nil {
				b.Fatal(err)
			}
			defer e.close(ctx)
			cm, _, err := e.compile(ctx, metered)
			if err != nil {
				b.Fatal(err)
			}
			defer cm.Close(ctx)
			var tm timings
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.reactor(ctx, cm, "upgrade", st.state, io.Discard, io.Discard, lim, &tm); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(tm.FuelUsed), "fuel/op")
		})
		b.Run(st.name+"/unmetered", func(b *testing.B) {
			e, err := newEngine(ctx, cache, lim, false)
			if err != nil {
				b.Fatal(err)
			}
			defer e.close(ctx)
			cm, err := e.r.CompileModule(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			defer cm.Close(ctx)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := runUnmetered(ctx, e, cm, st.state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// runUnmetered is the reactor call sequence on a module without the fuel
// meter (the baseline of BenchmarkMeter).
func runUnmetered(ctx context.Context, e *engine, cm wazero.CompiledModule, state []byte) error {
	mod, err := e.r.InstantiateModule(ctx, cm, moduleConfig(bytes.NewReader(nil), io.Discard, io.Discard).WithStartFunctions())
	if err != nil {
		return err
	}
	defer mod.Close(ctx)
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		return err
	}
	r, err := mod.ExportedFunction("alloc").Call(ctx, uint64(len(state)))
	if err != nil {
		return err
	}
	mod.Memory().Write(uint32(r[0]), state)
	res, err := mod.ExportedFunction("upgrade").Call(ctx, r[0], uint64(len(state)))
	if err != nil {
		return err
	}
	if _, ok := mod.Memory().Read(uint32(res[0]>>32), uint32(res[0])); !ok {
		return errors.New("output outside memory")
	}
	return nil
}

// BenchmarkInstrument measures the fuel meter's rewrite of a Go guest
// (about 3.3 MB), which every sandbox call pays before compiling.
func BenchmarkInstrument(b *testing.B) {
	wasm, err := os.ReadFile(example(b, "add-feature-flag"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	for i := 0; i < b.N; i++ {
		if _, _, err := instrument(wasm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoVsRust runs the Go and the Rust add-feature-flag on the
// 3-node devnet genesis state ("seed") and a 1 MiB state, the way the
// executor does (a sandbox child process per call, module compiled once
// into the on-disk cache: "process") and in-process on a compiled module
// (instantiate, alloc, upgrade, copy out: "inprocess"). It reports the
// wall time (ns/op), the CPU time per call (cpu-ms/op: the children's
// user+system time for process, this process's for inprocess, which also
// counts the Go runtime's GC and wazero's work) and the fuel used:
//
//	go test ./upgrade -run '^$' -bench GoVsRust -benchtime 10x -count 3
func BenchmarkGoVsRust(b *testing.B) {
	ctx := context.Background()
	lim := limits{MemoryLimitBytes: 256 << 20, MaxOutputBytes: 64 << 20, Fuel: genesis.DefaultFuel}
	cache := b.TempDir()
	states := []struct {
		name  string
		state []byte
	}{{"seed", genesisState(b, 3)}, {"1MiB", benchState(b, 1<<20)}}
	for _, pkg := range []struct{ name, example string }{{"rust", "add-feature-flag-rs"}, {"go", "add-feature-flag"}} {
		path := example(b, pkg.example)
		wasm, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		metered, _, err := instrument(wasm)
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range states {
			b.Run(pkg.name+"/"+st.name+"/process", func(b *testing.B) {
				req := childRequest{Op: "upgrade", WasmPath: path, CacheDir: cache, Limits: lim}
				if _, _, _, err := runInChild(ctx, req, st.state, time.Minute); err != nil { // warm the cache
					b.Fatal(err)
				}
				var tm timings
				_, c0, ok := cpuTimes()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, _, tm, err = runInChild(ctx, req, st.state, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if _, c1, _ := cpuTimes(); ok {
					b.ReportMetric(float64(c1-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
				}
				b.ReportMetric(float64(tm.FuelUsed), "fuel/op")
			})
			b.Run(pkg.name+"/"+st.name+"/inprocess", func(b *testing.B) {
				e, err := newEngine(ctx, cache, lim, false)
				if err != nil {
					b.Fatal(err)
				}
				defer e.close(ctx)
				cm, _, err := e.compile(ctx, metered)
				if err != nil {
					b.Fatal(err)
				}
				defer cm.Close(ctx)
				var tm timings
				runtime.GC()
				s0, _, ok := cpuTimes()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := e.reactor(ctx, cm, "upgrade", st.state, io.Discard, io.Discard, lim, &tm); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if s1, _, _ := cpuTimes(); ok {
					b.ReportMetric(float64(s1-s0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
				}
				b.ReportMetric(float64(tm.FuelUsed), "fuel/op")
			})
		}
	}
}
