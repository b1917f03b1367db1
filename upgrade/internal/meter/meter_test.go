package meter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The .wasm files in testdata were assembled from the .wat files next to
// them with wat2wasm (wabt 1.0.32): `wat2wasm --enable-all X.wat`, and
// `--no-check` for refill-*.wat, which are invalid on purpose. The tests
// only read the .wasm bytes.

func vector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// guest is an instantiated instrumented module.
type guest struct {
	mod  api.Module
	fuel api.MutableGlobal
}

// instantiate instruments wasm and instantiates it with stub WASI
// functions (random_get and fd_write return 0 without doing anything).
func instantiate(t *testing.T, wasm []byte) *guest {
	t.Helper()
	out, err := Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	_, err = r.NewHostModuleBuilder("wasi_snapshot_preview1").
		NewFunctionBuilder().WithFunc(func(int32, int32) int32 { return 0 }).Export("random_get").
		NewFunctionBuilder().WithFunc(func(int32, int32, int32, int32) int32 { return 0 }).Export("fd_write").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(FuelExport).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable %s export", FuelExport)
	}
	return &guest{mod: mod, fuel: g}
}

// call runs fn with fuel and returns the fuel used and the call's error.
func (g *guest) call(t *testing.T, fuel int64, fn string, args ...uint64) (int64, []uint64, error) {
	t.Helper()
	f := g.mod.ExportedFunction(fn)
	if f == nil {
		t.Fatalf("no export %s", fn)
	}
	g.fuel.Set(uint64(fuel))
	res, err := f.Call(context.Background(), args...)
	return fuel - int64(g.fuel.Get()), res, err
}

func TestStaticCost(t *testing.T) {
	g := instantiate(t, vector(t, "loop"))
	for _, n := range []uint64{1, 2, 1000} {
		used, res, err := g.call(t, 1e9, "count", n)
		if err != nil || res[0] != n {
			t.Fatalf("count(%d) = %v, %v", n, res, err)
		}
		if want := int64((8+SegmentFuel)*n + 1 + SegmentFuel); used != want {
			t.Errorf("count(%d) used %d fuel, want %d", n, used, want)
		}
	}
	// Exactly enough fuel passes; one less traps with the global negative.
	exact := int64((8+SegmentFuel)*10 + 1 + SegmentFuel)
	if _, _, err := g.call(t, exact, "count", 10); err != nil {
		t.Fatalf("exact budget: %v", err)
	}
	used, _, err := g.call(t, exact-1, "count", 10)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("want a trap, got %v", err)
	}
	if int64(g.fuel.Get()) >= 0 || used <= exact-1 {
		t.Fatalf("fuel after exhaustion %d (used %d): want negative", int64(g.fuel.Get()), used)
	}
}

func TestBranchSegments(t *testing.T) {
	g := instantiate(t, vector(t, "branches"))
	for _, c := range []struct {
		fn   string
		arg  uint64
		want int64
	}{{"pick", 1, 7 + 3*SegmentFuel}, {"pick", 0, 5 + 3*SegmentFuel}, {"skip", 1, 5 + 2*SegmentFuel}, {"skip", 0, 5 + 2*SegmentFuel}} {
		used, _, err := g.call(t, 1000, c.fn, c.arg)
		if err != nil || used != c.want {
			t.Errorf("%s(%d): used %d, %v; want %d", c.fn, c.arg, used, err, c.want)
		}
	}
}

func TestInfiniteLoopRunsOutOfFuel(t *testing.T) {
	g := instantiate(t, vector(t, "forever"))
	for _, fuel := range []int64{0, 1, 1e6} {
		used, _, err := g.call(t, fuel, "spin")
		if err == nil || int64(g.fuel.Get()) >= 0 {
			t.Fatalf("fuel %d: err %v, remaining %d", fuel, err, int64(g.fuel.Get()))
		}
		// Each iteration is one br plus the check: the overshoot is less
		// than one iteration.
		if used <= fuel || used > fuel+1+SegmentFuel {
			t.Errorf("fuel %d: used %d", fuel, used)
		}
	}
}

func TestGenuineTrapKeepsFuel(t *testing.T) {
	g := instantiate(t, vector(t, "trap"))
	used, _, err := g.call(t, 100, "boom")
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("want unreachable, got %v", err)
	}
	if want := int64(1 + SegmentFuel); used != want || int64(g.fuel.Get()) != 100-want {
		t.Fatalf("used %d, want %d", used, want)
	}
}

func TestDynamicCosts(t *testing.T) {
	g := instantiate(t, vector(t, "bulk"))
	cases := []struct {
		fn   string
		n    uint64
		want int64
	}{
		{"fill", 0, 4 + SegmentFuel},
		{"fill", 65536, 4 + SegmentFuel + 65536/BytesPerFuel},
		{"copy", 800, 4 + SegmentFuel + 800/BytesPerFuel},
		{"init", 16, 4 + SegmentFuel + 16/BytesPerFuel},
		{"grow", 2, 2 + SegmentFuel + 2*GrowFuelPerPage},
		// A failed grow is charged too: the work was asked for.
		{"grow", 100, 2 + SegmentFuel + 100*GrowFuelPerPage},
		{"tgrow", 500, 3 + SegmentFuel + 500*TableFuelPerElem},
		{"tfill", 300, 4 + SegmentFuel + 300*TableFuelPerElem},
		{"tinit", 2, 4 + SegmentFuel + 2*TableFuelPerElem},
		{"tcopy", 100, 4 + SegmentFuel + 100*TableFuelPerElem},
	}
	for _, c := range cases {
		used, _, err := g.call(t, 1e12, c.fn, c.n)
		if err != nil {
			t.Fatalf("%s(%d): %v", c.fn, c.n, err)
		}
		if used != c.want {
			t.Errorf("%s(%d) used %d, want %d", c.fn, c.n, used, c.want)
		}
	}
	// One huge fill cannot run on a small budget: the charge traps
	// before the instruction runs.
	g.mod.Memory().WriteByte(0, 0)
	used, _, err := g.call(t, 1000, "fill", 1<<16)
	if err == nil || used <= 1000 {
		t.Fatalf("fill on a small budget: used %d, err %v", used, err)
	}
	if b, _ := g.mod.Memory().ReadByte(0); b != 0 {
		t.Fatal("memory.fill ran although its charge trapped")
	}
}

func TestHostCallCosts(t *testing.T) {
	g := instantiate(t, vector(t, "wasi"))
	used, _, err := g.call(t, 1e9, "rand", 4096)
	if err != nil || used != 3+SegmentFuel+4096/BytesPerFuel {
		t.Fatalf("rand(4096): used %d, %v", used, err)
	}
	used, _, err = g.call(t, 1e9, "write", 1000)
	if err != nil || used != 5+SegmentFuel+1000*HostFuelPerItem {
		t.Fatalf("write(1000 iovecs): used %d, %v", used, err)
	}
}

func TestStartBecomesExport(t *testing.T) {
	g := instantiate(t, vector(t, "start"))
	ran := g.mod.ExportedGlobal("ran")
	if ran.Get() != 0 {
		t.Fatal("start function ran at instantiation")
	}
	if _, _, err := g.call(t, 100, StartExport); err != nil {
		t.Fatal(err)
	}
	if ran.Get() != 1 {
		t.Fatal("start export did not run the start function")
	}
}

func TestRefused(t *testing.T) {
	cases := map[string]struct {
		wasm []byte
		in   string
	}{
		"refill-global": {vector(t, "refill-global"), "global index 1 out of range"},
		"refill-local":  {vector(t, "refill-local"), "local index 1 out of range"},
		"reserved":      {vector(t, "reserved"), `"__synapse_fuel" is reserved`},
		"indirect-host": {vector(t, "indirect-host"), "may only be called directly"},
		"empty":         {nil, "not a wasm binary"},
		"bad magic":     {[]byte("\x00asn\x01\x00\x00\x00"), "not a wasm binary"},
		"version 2":     {[]byte("\x00asm\x02\x00\x00\x00"), "version"},
		"truncated":     {vector(t, "loop")[:30], "unexpected end"},
		"section order": {[]byte("\x00asm\x01\x00\x00\x00\x03\x01\x00\x01\x01\x00"), "out of order"},
		// Threads' atomic prefix.
		"atomics": {[]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x07\x01\x05\x00\xfe\x03\x00\x0b"), "unsupported opcode 0xfe"},
		// Tail call (return_call 0).
		"tail call": {[]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x06\x01\x04\x00\x12\x00\x0b"), "unsupported opcode 0x12"},
		// Shared memory (threads).
		"shared memory": {[]byte("\x00asm\x01\x00\x00\x00\x05\x04\x01\x03\x01\x01"), "shared"},
		// A body without its final end.
		"no end": {[]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x04\x01\x02\x00\x01"), "without end"},
	}
	for name, c := range cases {
		_, err := Instrument(c.wasm)
		if !errors.Is(err, ErrBadModule) || !strings.Contains(err.Error(), c.in) {
			t.Errorf("%s: got %v, want ErrBadModule with %q", name, err, c.in)
		}
	}
}

// Every vector instruments identically twice and the result compiles.
func TestDeterministicAndCompiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.wasm")
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		in := vector(t, name)
		a, errA := Instrument(in)
		b, errB := Instrument(bytes.Clone(in))
		if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
			t.Fatalf("%s: not deterministic", name)
		}
		if errA != nil {
			continue
		}
		if _, err := r.CompileModule(ctx, a); err != nil {
			t.Errorf("%s: instrumented module does not compile: %v", name, err)
		}
	}
}

func TestLEB(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 1 << 40, -1 << 62, 1<<63 - 1, -1 << 63} {
		r := &reader{b: appendS64(nil, v)}
		if got := r.sleb(64); got != v || r.err != nil || r.i != len(r.b) {
			t.Errorf("s64 %d: got %d, %v", v, got, r.err)
		}
	}
	for _, v := range []uint32{0, 1, 127, 128, 1<<32 - 1} {
		r := &reader{b: appendU32(nil, v)}
		if got := r.u32(); got != v || r.err != nil {
			t.Errorf("u32 %d: got %d, %v", v, got, r.err)
		}
	}
	bad := map[string]struct {
		b    []byte
		bits int
	}{
		"u32 high bits": {[]byte{0xff, 0xff, 0xff, 0xff, 0x1f}, 0},
		"u32 too long":  {[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0},
		"s32 high bits": {[]byte{0xff, 0xff, 0xff, 0xff, 0x4f}, 32},
		"s64 too long":  {[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 64},
		"truncated":     {[]byte{0x80}, 64},
	}
	for name, c := range bad {
		r := &reader{b: c.b}
		if c.bits == 0 {
			r.u32()
		} else {
			r.sleb(c.bits)
		}
		if r.err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzInstrument: any input either is refused or yields a module that
// wazero compiles exactly when it compiles the input. An input wazero
// refuses must stay refused: instrumentation must never make an invalid
// module valid (for example by giving meaning to an out-of-range index).
func FuzzInstrument(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.wasm")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	compiles := func(b []byte) (bool, error) {
		cm, err := r.CompileModule(ctx, b)
		if err != nil {
			return false, err
		}
		cm.Close(ctx)
		return true, nil
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Instrument(in)
		if err != nil {
			if !errors.Is(err, ErrBadModule) {
				t.Fatalf("error does not wrap ErrBadModule: %v", err)
			}
			return
		}
		again, _ := Instrument(in)
		if !bytes.Equal(out, again) {
			t.Fatal("not deterministic")
		}
		okIn, errIn := compiles(in)
		okOut, errOut := compiles(out)
		if okIn && !okOut {
			t.Fatalf("input compiles, instrumented output does not: %v", errOut)
		}
		if !okIn && okOut {
			t.Fatalf("instrumentation made an invalid module valid (input: %v)", errIn)
		}
	})
}
