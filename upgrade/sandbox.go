package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/upgrade/internal/meter"
)

// ABI names.
const (
	ABIReactor = "reactor" // exports memory, alloc, upgrade, get_upgrade_info
	ABICommand = "command" // WASI _start; argv ["pkg","upgrade"|"info"]
)

const (
	wasiModule = wasi_snapshot_preview1.ModuleName
	pageSize   = 65536
	// stdioCap bounds the guest stdout/stderr kept for error messages.
	stdioCap = 16 << 10
)

// ModuleInfo describes a package module (synapse-p2p wasm info).
type ModuleInfo struct {
	ABI     string   `json:"abi"`
	Exports []string `json:"exports"`
	Imports []string `json:"imports"`
	// UpgradeInfo is what get_upgrade_info (or argv "info") returned, when
	// it is JSON; UpgradeInfoError explains why it is missing otherwise.
	UpgradeInfo      json.RawMessage `json:"upgrade_info,omitempty"`
	UpgradeInfoError string          `json:"upgrade_info_error,omitempty"`
	// Memory is the module's own memory declaration (Inspect reads it
	// from the binary); nil when it declares none.
	Memory *MemoryPages `json:"memory,omitempty"`
	// Version, Description and Breaking are what UpgradeInfo declares
	// (set by Inspect when it is a JSON object).
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
	Breaking    bool   `json:"breaking,omitempty"`
}

// MemoryPages is a module's memory declaration in 64 KiB pages. The
// network's limits.memory_pages caps it: a module whose minimum exceeds
// it fails with memory_limit.
type MemoryPages struct {
	Min uint32 `json:"min_pages"`
	// Max is the declared maximum; nil when the module declares none
	// (then only the network's limit applies).
	Max *uint32 `json:"max_pages,omitempty"`
	// Imported is set when the memory is imported instead of defined,
	// which the sandbox refuses.
	Imported bool `json:"imported,omitempty"`
}

// limits are the sandbox limits of one call: the network's
// (genesis.Limits), already checked against the node's caps.
type limits struct {
	MemoryLimitBytes uint64 `json:"memory_limit_bytes"`
	MaxOutputBytes   int64  `json:"max_output_bytes"`
	// Fuel is the instruction budget of the whole call (start function,
	// _initialize, alloc and upgrade together); 0 means genesis.DefaultFuel.
	Fuel uint64 `json:"fuel"`
}

// budget is the fuel the guest starts with.
func (l limits) budget() int64 {
	switch {
	case l.Fuel == 0:
		return genesis.DefaultFuel
	case l.Fuel > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(l.Fuel)
}

// timings break one in-sandbox call down (for benchmarks and logs) and
// carry the fuel it used.
type timings struct {
	Compile     time.Duration `json:"compile"`
	Instantiate time.Duration `json:"instantiate"`
	CopyIn      time.Duration `json:"copy_in"`
	Call        time.Duration `json:"call"`
	CopyOut     time.Duration `json:"copy_out"`
	// Instrument is the time the fuel meter took to rewrite the module.
	Instrument time.Duration `json:"instrument"`
	// FuelUsed is the fuel the guest used; when the budget ran out it is
	// the budget plus the charge that overran it. Deterministic.
	FuelUsed uint64 `json:"fuel_used"`
}

// boundedBuffer keeps the first max bytes written and drops the rest
// without failing the writer.
type boundedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) String() string {
	s := strings.TrimSpace(b.buf.String())
	if b.truncated {
		s += " …(truncated)"
	}
	return s
}

// engine is one wazero runtime with the sandbox configuration.
type engine struct {
	r wazero.Runtime
}

// newEngine makes a runtime with the memory limit and an on-disk
// compilation cache (cacheDir may be ""). closeOnDone makes the runtime
// stop guest code when the context is done (in-process deadline).
func newEngine(ctx context.Context, cacheDir string, lim limits, closeOnDone bool) (*engine, error) {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone)
	if lim.MemoryLimitBytes > 0 {
		pages := lim.MemoryLimitBytes / pageSize
		if pages < 1 {
			pages = 1
		}
		if pages > 65536 {
			pages = 65536
		}
		rc = rc.WithMemoryLimitPages(uint32(pages))
	}
	if cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("upgrade: wasm compilation cache %s: %w", cacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("upgrade: wasi: %w", err)
	}
	return &engine{r: r}, nil
}

func (e *engine) close(ctx context.Context) { e.r.Close(ctx) }

// instrument adds fuel metering to a module whose imports are allowed.
// The compilation cache is keyed by the bytes compiled, so it holds
// instrumented modules only.
func instrument(wasm []byte) ([]byte, ModuleInfo, error) {
	// Reject forbidden imports first: a clearer error than the meter's.
	if imps, err := wasmImports(wasm); err == nil {
		var bad []string
		for _, imp := range imps {
			if !strings.HasPrefix(imp, wasiModule+".") || strings.HasSuffix(imp, ")") {
				bad = append(bad, imp)
			}
		}
		if len(bad) > 0 {
			sort.Strings(imps)
			return nil, ModuleInfo{Imports: imps}, pkgErr(ClassBadModule,
				"forbidden import %s: only %s functions may be imported", strings.Join(bad, ", "), wasiModule)
		}
	}
	out, err := meter.Instrument(wasm)
	if err != nil {
		return nil, ModuleInfo{}, pkgErr(ClassBadModule, "%v", err)
	}
	return out, ModuleInfo{}, nil
}

// compile compiles an instrumented module and checks its imports and
// exports.
func (e *engine) compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, ModuleInfo, error) {
	// Compile functions in parallel: a cold compile of a Go guest is the
	// slowest step of a first execution.
	cctx := experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0))
	cm, err := e.r.CompileModule(cctx, wasm)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ModuleInfo{}, transient("compile exceeded the wall-clock safety net")
		} else if ctx.Err() != nil {
			return nil, ModuleInfo{}, transient("compile: %v", ctx.Err())
		}
		class := ClassBadModule
		if strings.Contains(err.Error(), "limit") && strings.Contains(err.Error(), "memory") {
			class = ClassMemoryLimit
		}
		return nil, ModuleInfo{}, pkgErr(class, "invalid wasm module: %v", err)
	}
	info := ModuleInfo{}
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		info.Imports = append(info.Imports, mod+"."+name)
		if mod != wasiModule {
			bad = append(bad, mod+"."+name)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		info.Imports = append(info.Imports, mod+"."+name+" (memory)")
		bad = append(bad, mod+"."+name+" (memory)")
	}
	for name := range cm.ExportedFunctions() {
		if name != meter.StartExport {
			info.Exports = append(info.Exports, name)
		}
	}
	for name := range cm.ExportedMemories() {
		info.Exports = append(info.Exports, name+" (memory)")
	}
	sort.Strings(info.Imports)
	sort.Strings(info.Exports)
	if len(bad) > 0 {
		cm.Close(ctx)
		return nil, info, pkgErr(ClassBadModule, "forbidden import %s: only %s functions may be imported", strings.Join(bad, ", "), wasiModule)
	}
	fns := cm.ExportedFunctions()
	switch {
	case fns["upgrade"] != nil:
		info.ABI = ABIReactor
		if err := checkReactor(cm); err != nil {
			cm.Close(ctx)
			return nil, info, err
		}
	case fns["_start"] != nil:
		info.ABI = ABICommand
	default:
		cm.Close(ctx)
		return nil, info, pkgErr(ClassBadModule, "module exports neither upgrade (reactor ABI) nor _start (command ABI)")
	}
	return cm, info, nil
}

func checkReactor(cm wazero.CompiledModule) error {
	fns := cm.ExportedFunctions()
	if len(cm.ExportedMemories()) == 0 || cm.ExportedMemories()["memory"] == nil {
		return pkgErr(ClassBadModule, "reactor ABI: module does not export memory")
	}
	want := map[string][2][]api.ValueType{
		"alloc":   {{api.ValueTypeI32}, {api.ValueTypeI32}},
		"upgrade": {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI64}},
	}
	for _, name := range []string{"alloc", "upgrade"} {
		f := fns[name]
		if f == nil {
			return pkgErr(ClassBadModule, "reactor ABI: module does not export %s", name)
		}
		if !sameTypes(f.ParamTypes(), want[name][0]) || !sameTypes(f.ResultTypes(), want[name][1]) {
			return pkgErr(ClassBadModule, "reactor ABI: %s has type %v -> %v, want %v -> %v",
				name, f.ParamTypes(), f.ResultTypes(), want[name][0], want[name][1])
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// call is one sandbox call: op is "upgrade" (state in, new state out) or
// "info" (module info including get_upgrade_info).
type call struct {
	Op string
	// Wasm is the module as verified; run instruments it, unless
	// Metered holds the instrumented bytes already.
	Wasm    []byte
	Metered []byte
	State   []byte
	Limits  limits
	// Timeout, when > 0, bounds the guest's run (not the compile).
	Timeout time.Duration
	// OnCompiled, when set, is called once the module compiled.
	OnCompiled func()
}

// run compiles and runs one call in this process on a fresh instance.
func (e *engine) run(ctx context.Context, c call) ([]byte, ModuleInfo, timings, error) {
	var tm timings
	metered := c.Metered
	if metered == nil {
		t0 := time.Now()
		var err error
		var info ModuleInfo
		if metered, info, err = instrument(c.Wasm); err != nil {
			return nil, info, tm, err
		}
		tm.Instrument = time.Since(t0)
	}
	t0 := time.Now()
	cm, info, err := e.compile(ctx, metered)
	tm.Compile = time.Since(t0)
	if err != nil {
		return nil, info, tm, err
	}
	defer cm.Close(ctx)
	if c.OnCompiled != nil {
		c.OnCompiled()
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	stdout := &boundedBuffer{max: stdioCap}
	stderr := &boundedBuffer{max: stdioCap}
	var out []byte
	switch {
	case c.Op == "info":
		out, err = e.info(ctx, cm, info.ABI, stdout, stderr, c.Limits, &tm)
		if err != nil {
			info.UpgradeInfoError = err.Error()
		} else if json.Valid(out) {
			info.UpgradeInfo = json.RawMessage(out)
		} else {
			info.UpgradeInfoError = fmt.Sprintf("not JSON: %q", truncate(out, 200))
		}
		return nil, info, tm, nil
	case info.ABI == ABIReactor:
		out, err = e.reactor(ctx, cm, "upgrade", c.State, stdout, stderr, c.Limits, &tm)
	default:
		out, err = e.command(ctx, cm, "upgrade", c.State, stdout, stderr, c.Limits, &tm)
	}
	if err != nil {
		var pe *packageError
		if errors.As(err, &pe) {
			pe.Stdout, pe.Stderr = stdout.String(), stderr.String()
			if pe.Class == ClassTrap && guestOutOfMemory(pe.Stderr) {
				pe.Class = ClassMemoryLimit
			}
		}
		return nil, info, tm, err
	}
	return out, info, tm, nil
}

// guestOutOfMemory reports whether a trapped guest said that memory.grow
// failed: Go's runtime prints "out of memory" when its heap cannot grow
// and "runtime: cannot allocate memory" when it cannot even start under
// the limit; the Rust examples' allocator (abi-rs) prints "out of memory".
func guestOutOfMemory(stderr string) bool {
	return strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory")
}

func (e *engine) info(ctx context.Context, cm wazero.CompiledModule, abi string, stdout, stderr io.Writer, lim limits, tm *timings) ([]byte, error) {
	if abi == ABICommand {
		return e.command(ctx, cm, "info", nil, stdout, stderr, lim, tm)
	}
	if cm.ExportedFunctions()["get_upgrade_info"] == nil {
		return nil, pkgErr(ClassBadModule, "reactor ABI: module does not export get_upgrade_info")
	}
	return e.reactor(ctx, cm, "get_upgrade_info", nil, stdout, stderr, lim, tm)
}

// fuel is the metering of one instance: the guest's fuel global and the
// budget it was given.
type fuel struct {
	g      api.MutableGlobal
	budget int64
}

// startGuest gives a fresh instance its budget and runs the module's
// start function (which the meter turned into an export).
func (e *engine) startGuest(ctx context.Context, mod api.Module, lim limits, tm *timings) (*fuel, error) {
	g, ok := mod.ExportedGlobal(meter.FuelExport).(api.MutableGlobal)
	if !ok {
		return nil, fmt.Errorf("upgrade: instrumented module has no %s global", meter.FuelExport)
	}
	f := &fuel{g: g, budget: lim.budget()}
	g.Set(uint64(f.budget))
	if start := mod.ExportedFunction(meter.StartExport); start != nil {
		_, err := start.Call(ctx)
		f.record(tm)
		if err != nil {
			return f, f.guestErr(ctx, "start function", err)
		}
	}
	return f, nil
}

// remaining is the fuel left; negative once the budget ran out.
func (f *fuel) remaining() int64 { return int64(f.g.Get()) }

// record stores the fuel used so far in tm.
func (f *fuel) record(tm *timings) {
	if f != nil {
		tm.FuelUsed = uint64(f.budget - f.remaining())
	}
}

// guestErr classifies an error from guest code; a trap with the fuel
// global negative is the meter's unreachable: the budget ran out.
func (f *fuel) guestErr(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil && f != nil && f.remaining() < 0 {
		return pkgErr(ClassFuelExhausted, "%s: the fuel budget of %d ran out (global.governance.limits.fuel)", what, f.budget)
	}
	return guestErr(ctx, what, err)
}

func moduleConfig(stdin io.Reader, stdout, stderr io.Writer) wazero.ModuleConfig {
	// No mounts, no env, no args, wazero's deterministic clocks and random.
	return wazero.NewModuleConfig().WithName("").
		WithStdin(stdin).WithStdout(stdout).WithStderr(stderr)
}

// reactor runs fn ("upgrade" with state, or "get_upgrade_info").
func (e *engine) reactor(ctx context.Context, cm wazero.CompiledModule, fn string, state []byte,
	stdout, stderr io.Writer, lim limits, tm *timings) ([]byte, error) {
	t0 := time.Now()
	mod, err := e.r.InstantiateModule(ctx, cm, moduleConfig(bytes.NewReader(nil), stdout, stderr).WithStartFunctions())
	if err != nil {
		return nil, guestErr(ctx, "instantiate", err)
	}
	defer mod.Close(ctx)
	f, err := e.startGuest(ctx, mod, lim, tm)
	if err != nil {
		return nil, err
	}
	defer f.record(tm)
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(ctx); err != nil {
			return nil, f.guestErr(ctx, "_initialize", err)
		}
	}
	tm.Instantiate = time.Since(t0)
	var res []uint64
	if fn == "upgrade" {
		t1 := time.Now()
		r, err := mod.ExportedFunction("alloc").Call(ctx, uint64(len(state)))
		if err != nil {
			return nil, f.guestErr(ctx, "alloc", err)
		}
		ptr := uint32(r[0])
		if !mod.Memory().Write(ptr, state) {
			return nil, pkgErr(ClassTrap, "alloc(%d) returned %#x, outside memory", len(state), ptr)
		}
		tm.CopyIn = time.Since(t1)
		t2 := time.Now()
		res, err = mod.ExportedFunction("upgrade").Call(ctx, uint64(ptr), uint64(len(state)))
		tm.Call = time.Since(t2)
		if err != nil {
			return nil, f.guestErr(ctx, "upgrade", err)
		}
	} else {
		res, err = mod.ExportedFunction(fn).Call(ctx)
		if err != nil {
			return nil, f.guestErr(ctx, fn, err)
		}
	}
	if len(res) != 1 {
		return nil, pkgErr(ClassBadModule, "%s returned %d values, want one i64", fn, len(res))
	}
	t3 := time.Now()
	outPtr, outLen := uint32(res[0]>>32), uint32(res[0])
	if lim.MaxOutputBytes > 0 && int64(outLen) > lim.MaxOutputBytes {
		return nil, pkgErr(ClassOutputLimit, "%s returned %d bytes, the limit is %d", fn, outLen, lim.MaxOutputBytes)
	}
	view, ok := mod.Memory().Read(outPtr, outLen)
	if !ok {
		return nil, pkgErr(ClassInvalidOutput, "%s returned ptr %#x len %d, outside memory", fn, outPtr, outLen)
	}
	out := bytes.Clone(view)
	tm.CopyOut = time.Since(t3)
	return out, nil
}

// limitWriter fails once more than max bytes were written.
type limitWriter struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.max > 0 && int64(w.buf.Len()+len(p)) > w.max {
		w.over = true
		return 0, fmt.Errorf("output exceeds %d bytes", w.max)
	}
	return w.buf.Write(p)
}

// command runs _start with argv ["pkg", mode], state on stdin.
func (e *engine) command(ctx context.Context, cm wazero.CompiledModule, mode string, state []byte,
	_, stderr io.Writer, lim limits, tm *timings) ([]byte, error) {
	out := &limitWriter{max: lim.MaxOutputBytes}
	t0 := time.Now()
	// _start is called explicitly, after the fuel is set.
	cfg := moduleConfig(bytes.NewReader(state), out, stderr).WithArgs("pkg", mode).WithStartFunctions()
	mod, err := e.r.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return nil, guestErr(ctx, "instantiate", err)
	}
	defer mod.Close(ctx)
	f, err := e.startGuest(ctx, mod, lim, tm)
	if err != nil {
		return nil, err
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	f.record(tm)
	tm.Call = time.Since(t0)
	if out.over {
		return nil, pkgErr(ClassOutputLimit, "stdout exceeds the limit of %d bytes", lim.MaxOutputBytes)
	}
	var exit *sys.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) {
		return nil, f.guestErr(ctx, "_start", err)
	}
	return out.buf.Bytes(), nil
}

// guestErr classifies an error from guest code. The wall clock is only a
// safety net: its expiry depends on the machine, so it is transient.
func guestErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return transient("%s: the wall-clock safety net (upgrade timeout) expired; not a verdict on the package", what)
		}
		return transient("%s: %v", what, ctx.Err())
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return pkgErr(ClassTrap, "%s: guest exited with code %d", what, exit.ExitCode())
	}
	return pkgErr(ClassTrap, "%s: %v", what, err)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
