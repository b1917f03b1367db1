package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// benchState is a valid network state of about size bytes: the genesis
// state plus filler nodes in global.nodes.
func benchState(b *testing.B, size int) []byte {
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
	cache := b.TempDir()
	lim := limits{MemoryLimitBytes: 1 << 30, MaxOutputBytes: 256 << 20}
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
				cm, _, err := e.compile(ctx, wasm) // warm the cache
				if err != nil {
					b.Fatal(err)
				}
				cm.Close(ctx)
				b.SetBytes(int64(len(state)))
				var host, total time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					_, _, tm, err := e.run(ctx, call{Op: "upgrade", Wasm: wasm, State: state, Limits: lim, Timeout: time.Minute})
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

// BenchmarkCompile loads add-feature-flag cold (empty cache) and cached.
func BenchmarkCompile(b *testing.B) {
	wasm, err := os.ReadFile(example(b, "add-feature-flag"))
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
