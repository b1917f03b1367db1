package upgrade

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tiny hand-assembled modules for the in-process child fuzzer: they
// compile in a millisecond, so the fuzzer spends its time on the protocol.
var childFuzzModules = map[string][]byte{
	// Reactor ABI: memory (1 page), alloc(n) = 1024, upgrade(p, n) =
	// p<<32 | n: returns its input, the state.
	"echo.wasm": wasmBytes(
		"0061736d01000000",
		"010c02"+"60017f017f"+"60027f7f017e", // types (i32)->i32, (i32,i32)->i64
		"0303020001",                         // functions: alloc, upgrade
		"0503010001",                         // memory, min 1 page
		"071c03"+"066d656d6f72790200"+"05616c6c6f630000"+"077570677261646500"+"01", // exports
		"0a1402"+"05004180080b"+"0c002000ad42208620"+"01ad840b",                    // code
	),
	// Reactor ABI whose upgrade traps (unreachable).
	"trap.wasm": wasmBytes(
		"0061736d01000000",
		"010c02"+"60017f017f"+"60027f7f017e",
		"0303020001",
		"0503010001",
		"071c03"+"066d656d6f72790200"+"05616c6c6f630000"+"077570677261646500"+"01",
		"0a0b02"+"0500418008"+"0b"+"0300000b",
	),
	// Command ABI: an empty _start (writes no output).
	"start.wasm": wasmBytes(
		"0061736d01000000",
		"010401600000",
		"03020100",
		"070a01065f73746172740000",
		"0a040102000b",
	),
	"junk.wasm": []byte("\x00asm\x01\x00\x00\x00\x01\xff"),
}

func wasmBytes(parts ...string) []byte {
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		panic(err)
	}
	return b
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// childStdin is what a parent writes to a child: the request line, then
// the state.
func childStdin(tb testing.TB, req childRequest, state string) []byte {
	tb.Helper()
	hdr, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	return append(append(hdr, '\n'), state...)
}

// bufCloser collects progress bytes.
type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

// childFuzzSafe reports whether runChild may serve req in this process:
// the module path names a file directly in the working directory (the
// fuzzer's temporary directory) and the compilation cache is none or
// "cache" there. Anything else (absolute paths, devices, directories
// elsewhere) is skipped, never read.
func childFuzzSafe(req childRequest) bool {
	p := req.WasmPath
	okPath := p == "" || (filepath.IsLocal(p) && !strings.ContainsAny(p, `/\`))
	return okPath && (req.CacheDir == "" || req.CacheDir == "cache")
}

// FuzzRunChild runs the sandbox child's loop in this process on arbitrary
// stdin bytes (requests are served only for module paths inside a
// temporary directory). It must return 0 and write exactly one response
// header line that decodes strictly, followed by output only when the
// header says ok; an ok header carries no error; the echo module returns
// the state; progress is only 'L' then 'C'; and the parent's
// parseChildOutput reads the same verdict and output.
func FuzzRunChild(f *testing.F) {
	dir := f.TempDir()
	for name, b := range childFuzzModules {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "cache"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Chdir(dir)
	lim := limits{MemoryLimitBytes: 1 << 20, MaxOutputBytes: 1 << 16, Fuel: 1 << 20}
	state := `{"global":{"version":"1.0.0"}}`
	for _, req := range []childRequest{
		{Op: "upgrade", WasmPath: "echo.wasm", SHA256: sha256hex(childFuzzModules["echo.wasm"]), Limits: lim},
		{Op: "upgrade", WasmPath: "echo.wasm", CacheDir: "cache", Limits: lim},
		{Op: "info", WasmPath: "echo.wasm", Limits: lim},
		{Op: "upgrade", WasmPath: "echo.wasm", SHA256: strings.Repeat("0", 64), Limits: lim},
		{Op: "upgrade", WasmPath: "echo.wasm", Limits: limits{MaxOutputBytes: 4, Fuel: 1}},         // fuel out in alloc
		{Op: "upgrade", WasmPath: "echo.wasm", Limits: limits{MaxOutputBytes: 1 << 16, Fuel: 10}},  // fuel out in upgrade
		{Op: "upgrade", WasmPath: "echo.wasm", Limits: limits{MaxOutputBytes: 4, Fuel: 1 << 20}},   // output limit
		{Op: "upgrade", WasmPath: "echo.wasm", Limits: limits{MemoryLimitBytes: 1, Fuel: 1 << 20}}, // below a page
		{Op: "upgrade", WasmPath: "echo.wasm", Limits: limits{MemoryLimitBytes: 1 << 40}},          // above 4 GiB
		{Op: "frobnicate", WasmPath: "echo.wasm", Limits: lim},
		{Op: "info", WasmPath: "trap.wasm", Limits: lim},
		{Op: "upgrade", WasmPath: "trap.wasm", Limits: lim},
		{Op: "upgrade", WasmPath: "start.wasm", Limits: lim},
		{Op: "info", WasmPath: "start.wasm", Limits: lim},
		{Op: "upgrade", WasmPath: "junk.wasm", Limits: lim},
		{Op: "upgrade", WasmPath: "missing.wasm", Limits: lim},
	} {
		f.Add(childStdin(f, req, state))
	}
	f.Add([]byte(""))
	f.Add([]byte("{\"op\":\"upgrade\""))
	f.Add([]byte("not json\n{}"))
	f.Add([]byte("{\"op\":1}\n"))
	f.Add([]byte("null\n"))
	f.Fuzz(func(t *testing.T, stdin []byte) {
		// The child decodes the request line exactly so: gate on it.
		stateAt := bytes.IndexByte(stdin, '\n')
		if stateAt >= 0 {
			var req childRequest
			if json.Unmarshal(stdin[:stateAt+1], &req) == nil && !childFuzzSafe(req) {
				return
			}
		}
		var out bytes.Buffer
		var progress bufCloser
		side := childSide{progress: &progress, limitMemory: func(uint64) error { return nil }}
		if code := runChild(bytes.NewReader(stdin), &out, side); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if !progress.closed {
			t.Fatal("progress not closed")
		}
		if p := progress.String(); p != "" && p != "L" && p != "LC" {
			t.Fatalf("progress %q", p)
		}
		raw := out.Bytes()
		nl := bytes.IndexByte(raw, '\n')
		if nl < 0 {
			t.Fatalf("no response line in %q", raw)
		}
		var resp childResponse
		dec := json.NewDecoder(bytes.NewReader(raw[:nl]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("response header %q: %v", raw[:nl], err)
		}
		body := raw[nl+1:]
		if !resp.OK {
			if resp.Error == "" || len(body) != 0 {
				t.Fatalf("failure without an error or with %d bytes of output: %q", len(body), raw[:nl])
			}
		} else if resp.Error != "" || resp.Class != "" {
			t.Fatalf("ok response with an error: %q", raw[:nl])
		}
		if resp.OK && stateAt >= 0 {
			var req childRequest
			json.Unmarshal(stdin[:stateAt+1], &req)
			if req.WasmPath == "echo.wasm" && req.Op != "info" && !bytes.Equal(body, stdin[stateAt+1:]) {
				t.Fatalf("echo returned %d bytes for a %d-byte state", len(body), len(stdin)-stateAt-1)
			}
		}
		got, _, _, err := parseChildOutput(raw)
		if (err == nil) != resp.OK || !bytes.Equal(got, body) {
			t.Fatalf("parent reads ok=%v (%v) and %d bytes; child said ok=%v with %d bytes", err == nil, err, len(got), resp.OK, len(body))
		}
	})
}

// TestParseChildOutput: the parent's verdict on what a child wrote.
func TestParseChildOutput(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		ok        bool
		class     string // "" with !ok: transient
		out       string
	}{
		{name: "ok", raw: "{\"ok\":true,\"info\":{}}\n{\"a\":1}", ok: true, out: `{"a":1}`},
		{name: "ok, empty output", raw: "{\"ok\": true }\n", ok: true},
		{name: "classed failure", raw: "{\"ok\":false,\"class\":\"trap\",\"error\":\"x\"}\n", class: ClassTrap},
		{name: "unclassed failure", raw: "{\"ok\":false,\"error\":\"x\"}\n"},
		{name: "no header line", raw: "{\"ok\":true}"},
		{name: "not JSON", raw: "fatal error: out of memory\n"},
		{name: "ok as a string", raw: "{\"ok\":\"true\"}\n"},
		// FuzzParseChildOutput: encoding/json took these for ok.
		{name: "Ok", raw: "{\"Ok\":true}\n{}"},
		{name: "OK", raw: "{\"OK\":true,\"info\":{}}\n{}"},
		{name: "ok then OK false", raw: "{\"ok\":true,\"OK\":false}\n{}"},
		{name: "OK false then ok", raw: "{\"OK\":false,\"ok\":true}\nX", ok: true, out: "X"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _, err := parseChildOutput([]byte(tc.raw))
			if tc.ok {
				if err != nil || string(out) != tc.out {
					t.Fatalf("out %q, err %v; want %q", out, err, tc.out)
				}
				return
			}
			if err == nil {
				t.Fatalf("success with %q", out)
			}
			if got := classOf(err); got != tc.class {
				t.Fatalf("class %q, want %q (%v)", got, tc.class, err)
			}
			if tc.class == "" && !errors.Is(err, errTransient) {
				t.Fatalf("not transient: %v", err)
			}
		})
	}
}

// FuzzParseChildOutput: the parent's reading of a child's stdout never
// panics; it reports success only for a header whose "ok" member is the
// JSON literal true, with the bytes after the header line as output;
// every failure is transient or a classed *packageError.
func FuzzParseChildOutput(f *testing.F) {
	f.Add([]byte("{\"ok\":true,\"info\":{\"abi\":\"reactor\",\"exports\":null,\"imports\":null},\"timings\":{}}\n{\"a\":1}"))
	f.Add([]byte("{\"ok\":false,\"class\":\"trap\",\"error\":\"upgrade: unreachable\",\"info\":{},\"timings\":{}}\n"))
	f.Add([]byte("{\"ok\":false,\"error\":\"sandbox child: bad request\",\"info\":{},\"timings\":{}}\n"))
	f.Add([]byte("{\"ok\":true}\n"))
	f.Add([]byte("{\"ok\":\"true\"}\n{}"))
	f.Add([]byte("{\"ok\":1}\n{}"))
	f.Add([]byte("{\"ok\":false,\"ok\":true}\nX"))
	f.Add([]byte("{\"ok\":true"))
	f.Add([]byte("\n"))
	f.Add([]byte("fatal error: out of memory\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, _, _, err := parseChildOutput(raw)
		nl := bytes.IndexByte(raw, '\n')
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			var pe *packageError
			switch {
			case errors.As(err, &pe):
				if pe.Class == "" {
					t.Fatal("package error without a class")
				}
			case !errors.Is(err, errTransient):
				t.Fatalf("neither transient nor a package error: %v", err)
			}
			return
		}
		if nl < 0 {
			t.Fatal("success without a header line")
		}
		var hdr map[string]json.RawMessage
		if err := json.Unmarshal(raw[:nl], &hdr); err != nil {
			t.Fatalf("success from a header that is not an object: %v", err)
		}
		if string(hdr["ok"]) != "true" {
			t.Fatalf("success from header %q: its ok member is %q", raw[:nl], hdr["ok"])
		}
		if !bytes.Equal(out, raw[nl+1:]) {
			t.Fatal("output is not the bytes after the header")
		}
	})
}
