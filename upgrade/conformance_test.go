package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// twins are the example packages written in Go and in Rust that must
// behave identically (docs/authoring.md).
var twins = []struct {
	abi, goPkg, rustPkg, version string
}{
	{ABIReactor, "add-feature-flag", "add-feature-flag-rs", "1.2.0"},
	{ABICommand, "command-feature-flag", "command-feature-flag-rs", "1.3.0"},
}

// outcome is what one sandbox call gave: the guest's raw output or the
// failure class.
type outcome struct {
	class string // "" on success
	msg   string
	raw   []byte // the guest's output bytes, before canonicalisation
	sum   string // SHA-256 of the canonical output
	fuel  uint64
}

// runSandbox runs wasmPath on state like the executor: in a sandbox child
// process (iso) with the limits of the state (the defaults when the state
// has none), and classifies the result. With -short it runs in-process
// (same verdicts and fuel, TestFuelExhaustedIsDeterministic): under -race
// every child pays a race-instrumented rewrite of the 3.3 MB Go module.
func runSandbox(t testing.TB, iso Isolation, wasmPath string, state []byte) outcome {
	t.Helper()
	if testing.Short() {
		iso = IsolationInProcess
	}
	netLim, err := networkLimits(state)
	if err != nil {
		netLim = genesis.Limits{}.WithDefaults()
	}
	lim, err := sandboxLimits(Config{}.withDefaults(), netLim)
	if err != nil {
		t.Fatal(err)
	}
	req := childRequest{Op: "upgrade", WasmPath: wasmPath, CacheDir: sharedWasmCache, Limits: lim}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, _, tm, err := runCall(ctx, iso, req, state, 5*time.Minute)
	o := outcome{fuel: tm.FuelUsed, raw: out}
	var pe *packageError
	switch {
	case errors.As(err, &pe):
		o.class, o.msg = pe.Class, pe.Error()
	case err != nil:
		t.Fatalf("%s: not a package failure: %v", wasmPath, err)
	default:
		_, sum, err := canonicalState(out)
		if err != nil {
			o.class, o.msg = ClassInvalidOutput, err.Error()
		}
		o.sum = sum
	}
	return o
}

// conformanceStates are the inputs both twins get: valid states, states
// that exercise every corner of Go's encoding/json, and garbage.
func conformanceStates(t testing.TB) []struct {
	name  string
	state []byte
} {
	seed := genesisState(t, 3)
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(seed))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["global"].(map[string]any), "nodes")
	noNodes, _ := json.Marshal(doc)
	// Depth 10000 is what Go's decoder accepts; the state object and
	// global count, so the chain under "deep" adds 9998 levels.
	deep := func(levels int) []byte {
		return []byte(`{"global":{"deep":` + strings.Repeat(`[`, levels) + strings.Repeat(`]`, levels) + `,"version":"1.0.0"}}`)
	}
	return []struct {
		name  string
		state []byte
	}{
		{"seed", seed},
		{"1MiB", benchState(t, 1<<20)},
		{"no-nodes", noNodes},
		{"tricky", []byte(trickyState)},
		{"trailing-data", append(bytes.Clone(seed), []byte(" }{ not json \xff")...)},
		{"depth-10000", deep(9998)},
		{"depth-10001", deep(9999)},
		{"garbage", []byte("garbage \x00\xff\xfe not json")},
		{"truncated", seed[:len(seed)/2]},
		{"empty", nil},
		{"array", []byte(`[{"global":{}}]`)},
		{"null", []byte(`null`)},
		{"global-not-object", []byte(`{"global":["nodes"]}`)},
		{"bad-escape", []byte(`{"global":{"a":"\x"}}`)},
		{"control-char", []byte("{\"global\":{\"a\":\"\x01\"}}")},
		{"bad-number", []byte(`{"global":{"a":01}}`)},
	}
}

// heavyStates take the Go guest seconds (minutes under -race on a loaded
// machine); -short leaves them to the full run.
var heavyStates = map[string]bool{"1MiB": true, "depth-10000": true, "depth-10001": true}

// trickyState is valid JSON that only an exact copy of Go's
// encoding/json round-trips byte for byte: unsorted and repeated keys
// (the last wins), HTML characters and U+2028/9 (escaped on output),
// control characters, \u escapes with valid and lone surrogates, invalid
// UTF-8 (each bad byte becomes U+FFFD), numbers kept as written, nodes that
// are not objects, and whitespace everywhere.
const trickyState = " \t\r\n{ \"z\" : 1 , \"global\" : { \"version\" : \"1.0.0\", " +
	"\"nodes\" : { \"b\" : { \"new_feature_enabled\" : false , \"x\" : [ ] } , \"a\" : { } , \"n\" : 5 , \"l\" : [ { } ] , \"s\" : \"str\" , \"nul\" : null } , " +
	"\"html\" : \"<a href='x'>&amp;</a> \u2028 \u2029 \x7f\" , " +
	"\"ctl\" : \"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\\/\\\"\\\\\" , " +
	"\"esc\" : \"\\u00e9\\u00E9 \\ud83d\\ude00 \\ud800x \\udc00\\ud800\\udc00 \\ud800\\u0041 \\uDBFF\\uDFFF\" , " +
	"\"utf8\" : \"é € 😀 \xe2\x82 \xed\xa0\x80 \xc0\x80 \xf4\x90\x80\x80 \xff \xef\xbf\xbd\" , " +
	"\"nums\" : [ 0 , -0 , 1.50 , -1.5e+10 , 1E400 , 123456789012345678901234567890 , 0.000001 , 1e-7 ] , " +
	"\"dup\" : 1 , \"dup\" : { \"k\" : \"first\" , \"k\" : \"last\" } , " +
	"\"\\u00e9key\" : true , \"\xffbadkey\" : false , \"é\" : null , \"\" : \"empty key\" } , " +
	"\"a\" : [ true , false , null , \"\" , [ [ [ ] ] ] ] , " +
	"\"global\" : { \"version\" : \"1.0.0\", " +
	"\"nodes\" : { \"b\" : { \"new_feature_enabled\" : false , \"x\" : [ ] } , \"a\" : { } , \"n\" : 5 , \"l\" : [ { } ] , \"s\" : \"str\" , \"nul\" : null } , " +
	"\"html\" : \"<a href='x'>&amp;</a> \u2028 \u2029 \x7f\" , " +
	"\"ctl\" : \"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\\/\\\"\\\\\" , " +
	"\"esc\" : \"\\u00e9\\u00E9 \\ud83d\\ude00 \\ud800x \\udc00\\ud800\\udc00 \\ud800\\u0041 \\uDBFF\\uDFFF\" , " +
	"\"utf8\" : \"é € 😀 \xe2\x82 \xed\xa0\x80 \xc0\x80 \xf4\x90\x80\x80 \xff \xef\xbf\xbd\" , " +
	"\"nums\" : [ 0 , -0 , 1.50 , -1.5e+10 , 1E400 , 123456789012345678901234567890 , 0.000001 , 1e-7 ] , " +
	"\"dup\" : 1 , \"dup\" : { \"k\" : \"first\" , \"k\" : \"last\" } , " +
	"\"\\u00e9key\" : true , \"\xffbadkey\" : false , \"é\" : null , \"\" : \"empty key\" } } trailing"

// TestGoRustConformance runs the Go and the Rust version of each example
// on the same inputs in the sandbox: each input gives both the same guest
// output bytes and the same canonical state hash, or the same failure
// class.
func TestGoRustConformance(t *testing.T) {
	states := conformanceStates(t)
	for _, tw := range twins {
		t.Run(tw.abi, func(t *testing.T) {
			t.Parallel()
			goWasm, rustWasm := example(t, tw.goPkg), example(t, tw.rustPkg)
			for _, st := range states {
				if testing.Short() && heavyStates[st.name] {
					continue
				}
				g := runSandbox(t, IsolationProcess, goWasm, st.state)
				r := runSandbox(t, IsolationProcess, rustWasm, st.state)
				t.Logf("%-18s go: class %-8q fuel %12d | rust: class %-8q fuel %10d | %d bytes out",
					st.name, g.class, g.fuel, r.class, r.fuel, len(r.raw))
				if g.class != r.class {
					t.Errorf("%s: go fails with %q, rust with %q\n go: %s\n rust: %s", st.name, g.class, r.class, g.msg, r.msg)
					continue
				}
				if g.class == "" && (!bytes.Equal(g.raw, r.raw) || g.sum != r.sum) {
					t.Errorf("%s: outputs differ (canonical sha256 go %s rust %s)\n go:   %s\n rust: %s", st.name, g.sum, r.sum,
						truncate(g.raw, 600), truncate(r.raw, 600))
				}
			}
		})
	}
}

// TestGoRustConformanceExpected pins what the twins must do on the main
// inputs, so the conformance test cannot pass by both failing.
func TestGoRustConformanceExpected(t *testing.T) {
	states := map[string][]byte{}
	for _, st := range conformanceStates(t) {
		states[st.name] = st.state
	}
	want := map[string]string{
		"seed": "", "no-nodes": "", "tricky": "", "trailing-data": "", "depth-10000": "",
		"depth-10001": ClassTrap, "garbage": ClassTrap, "truncated": ClassTrap, "empty": ClassTrap,
		"null": ClassTrap, "global-not-object": ClassTrap, "bad-number": ClassTrap,
	}
	for _, tw := range twins {
		t.Run(tw.rustPkg, func(t *testing.T) {
			wasm := example(t, tw.rustPkg)
			for name, class := range want {
				t.Run(name, func(t *testing.T) {
					o := runSandbox(t, IsolationInProcess, wasm, states[name])
					if o.class != class {
						t.Fatalf("class %q (%s), want %q", o.class, o.msg, class)
					}
					if class != "" {
						return
					}
					var doc struct {
						Global map[string]any `json:"global"`
					}
					dec := json.NewDecoder(bytes.NewReader(o.raw))
					dec.UseNumber() // 1E400 does not fit a float64
					if err := dec.Decode(&doc); err != nil {
						t.Fatal(err)
					}
					g := doc.Global
					if g["version"] != tw.version {
						t.Errorf("version %v", g["version"])
					}
					if tw.abi == ABICommand && g["command_abi"] != true {
						t.Errorf("command_abi %v", g["command_abi"])
					}
					if nodes, ok := g["nodes"].(map[string]any); ok && tw.abi == ABIReactor {
						for id, n := range nodes {
							if m, ok := n.(map[string]any); ok && m["new_feature_enabled"] != true {
								t.Errorf("node %s not flagged: %v", id, m)
							}
						}
					}
				})
			}
		})
	}
}

// TestGoRustLimits puts small limits into the state (where the executor
// reads them) and checks that both twins fail with the same class.
func TestGoRustLimits(t *testing.T) {
	seed := genesisState(t, 3)
	big := benchState(t, 1<<20)
	cases := []struct {
		name  string
		state []byte
		lim   genesis.Limits
		class string
	}{
		{"fuel 1000", seed, genesis.Limits{Fuel: 1000}, ClassFuelExhausted},
		{"fuel 100000 on 1MiB", big, genesis.Limits{Fuel: 100_000}, ClassFuelExhausted},
		{"memory below the module's minimum", seed, genesis.Limits{MemoryPages: 8}, ClassMemoryLimit},
		{"memory 3 MiB on 1MiB", big, genesis.Limits{MemoryPages: 48}, ClassMemoryLimit},
		{"output 100 bytes", seed, genesis.Limits{MaxOutputBytes: 100}, ClassOutputLimit},
		{"output 512 KiB on 1MiB", big, genesis.Limits{MaxOutputBytes: 512 << 10}, ClassOutputLimit},
	}
	for _, tw := range twins {
		t.Run(tw.abi, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				if testing.Short() && len(c.state) > 1<<20 {
					continue // heavyStates
				}
				state := withLimits(t, c.state, c.lim)
				for _, pkg := range []string{tw.goPkg, tw.rustPkg} {
					o := runSandbox(t, IsolationProcess, example(t, pkg), state)
					if o.class != c.class {
						t.Errorf("%s, %s: class %q (%s), want %q", c.name, pkg, o.class, o.msg, c.class)
					}
				}
			}
		})
	}
}

var (
	rustEngineOnce sync.Once
	rustEngine     *engine
	rustMetered    []byte
	rustEngineErr  error
)

// rustTransform runs add-feature-flag-rs in-process on one shared engine
// (the metered module, as the sandbox runs it) and returns its output, or
// an error for a trap.
func rustTransform(t testing.TB, in []byte) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	lim := limits{MemoryLimitBytes: 256 << 20, MaxOutputBytes: 64 << 20, Fuel: 1 << 40}
	rustEngineOnce.Do(func() {
		var wasm []byte
		if wasm, rustEngineErr = os.ReadFile(example(t, "add-feature-flag-rs")); rustEngineErr != nil {
			return
		}
		if rustMetered, _, rustEngineErr = instrument(wasm); rustEngineErr != nil {
			return
		}
		// wazero's interpreter: under the fuzzer's coverage
		// instrumentation, compiling the module takes minutes.
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(uint32(lim.MemoryLimitBytes/pageSize)))
		if _, rustEngineErr = wasi_snapshot_preview1.Instantiate(ctx, r); rustEngineErr == nil {
			rustEngine = &engine{r: r}
		}
	})
	if rustEngineErr != nil {
		t.Fatal(rustEngineErr)
	}
	out, _, _, err := rustEngine.run(ctx, call{Op: "upgrade", Metered: rustMetered, State: in, Limits: lim, Timeout: time.Minute})
	var pe *packageError
	if err != nil && !(errors.As(err, &pe) && pe.Class == ClassTrap) {
		t.Fatalf("rust guest on %q: %v", truncate(in, 100), err)
	}
	return out, err
}

// FuzzRustJSONMatchesGo checks the Rust guest's JSON against Go's
// encoding/json (nativeTransform is the Go package's transform compiled
// for the host): on any input both fail, or both give the same bytes.
func FuzzRustJSONMatchesGo(f *testing.F) {
	for _, s := range []string{
		trickyState,
		`{"global":{}}`,
		`{"global":{"nodes":{"a":{},"b":1}},"version":"1.0.0"}`,
		`{"global":{"s":"\ud800\udc00\udbff"}}`,
		"{\"global\":{\"s\":\"\xf0\x9f\x98\"}}",
		`{"global":{"n":[1e5,-0.0,2E-3]}}`,
		`{"global":{"a":{"b":{"c":[[[{}]]]}}}}`,
		`{"b":1,"a":2,"b":3,"global":{"x":"<&>"}}`,
		`{"global":1}`,
		`{"global":{}`,
		`{"global":{},}`,
		`{"global":{"a":tru}}`,
		`{"global":{"a\u0062":1,"ab":2,"\u0000":3,"é":4,"z":5,"\u00e9":6}}`,
		`{"global":{"n":[-0.0e-0,1E+2,0.5e10,-9007199254740993]}}`,
		"{\"global\":{\"s\":\"\u2028\u2029\\u2028 <>&\\u003c\"}}",
		`{"global":{"nodes":{"x":{"new_feature_enabled":false,"a":1},"y":[],"z":{"b":{}}}}}`,
		`{"global":{}} {"global":{"version":"9"}}`,
		`{"global":{"version":"1.0.0"},"global":{"other":true}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, werr := nativeTransform(in)
		got, gerr := rustTransform(t, in)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("input %q: go error %v, rust error %v", in, werr, gerr)
		}
		if werr == nil && !bytes.Equal(want, got) {
			t.Fatalf("input %q:\n go:   %q\n rust: %q", in, want, got)
		}
	})
}

func TestTrickyStateIsValid(t *testing.T) {
	// The go side of the comparison really is Go's encoding/json output.
	out, err := nativeTransform([]byte(trickyState))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e \u2028 \u2029`, `"k":"last"`, `1E400`, "\ufffd"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Go output lacks %s: %s", want, out)
		}
	}
}
