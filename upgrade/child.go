package upgrade

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// childEnv switches a binary that calls MaybeRunSandboxChild into the
// sandbox child mode.
const childEnv = "SYNAPSE_UPGRADE_SANDBOX_CHILD"

// childRequest is the first line the parent writes to the child's stdin;
// the state follows it.
type childRequest struct {
	Op       string `json:"op"`
	WasmPath string `json:"wasm_path"`
	// SHA256 is checked by the child after reading WasmPath ("" = no check).
	SHA256   string `json:"sha256"`
	CacheDir string `json:"cache_dir"`
	Limits   limits `json:"limits"`
}

// childResponse is the first line of the child's stdout; on success the
// output follows it.
type childResponse struct {
	OK      bool       `json:"ok"`
	Class   string     `json:"class,omitempty"`
	Error   string     `json:"error,omitempty"`
	Stdout  string     `json:"stdout,omitempty"`
	Stderr  string     `json:"stderr,omitempty"`
	Info    ModuleInfo `json:"info"`
	Timings timings    `json:"timings"`
}

// MaybeRunSandboxChild must be the first call in main() and in TestMain of
// any test binary that executes packages with IsolationProcess. In the
// child mode (started by this package) it runs one sandbox call and exits;
// otherwise it returns at once.
func MaybeRunSandboxChild() {
	if os.Getenv(childEnv) != "1" {
		childHook.Store(true)
		return
	}
	os.Exit(runChild(os.Stdin, os.Stdout, childProcess()))
}

// childSide is what runChild takes from the process it runs in: where
// progress bytes go and how its memory is capped. A sandbox child reports
// progress on fd 3 and caps its memory with limitChildMemory; a test that
// calls runChild in its own process substitutes both.
type childSide struct {
	progress    io.WriteCloser // nil: no progress reports
	limitMemory func(uint64) error
}

// childProcess is the childSide of a real sandbox child.
func childProcess() childSide {
	side := childSide{limitMemory: limitChildMemory}
	if f := os.NewFile(3, "progress"); f != nil {
		side.progress = f
	}
	return side
}

// childHook records that this binary calls MaybeRunSandboxChild, so a
// child process of it would run the sandbox (and not, say, main again).
var childHook atomic.Bool

// ProcessIsolationAvailable reports whether this binary can run the
// sandbox in a child process: MaybeRunSandboxChild was called at startup.
func ProcessIsolationAvailable() bool { return childHook.Load() }

var errNoChildHook = errors.New("upgrade: process isolation needs upgrade.MaybeRunSandboxChild() as the first call in main (and TestMain); or use IsolationInProcess")

// Progress bytes the child writes on fd 3. The parent's wall-clock safety
// net has one phase each: starting (until the compile lock is held),
// compiling (until the module compiled) and running. Waiting for another
// process's compile of the same module is not compiling time.
const (
	progressLocked   = 'L'
	progressCompiled = 'C'
)

// runChild serves one sandbox call: it reads the request line and the
// state from stdin and writes the response header line, then the output
// on success, to stdout. It returns the process exit code.
func runChild(stdin io.Reader, stdout io.Writer, side childSide) int {
	ctx := context.Background()
	in := bufio.NewReaderSize(stdin, 1<<20)
	resp := childResponse{}
	progress := side.progress
	signal := func(b byte) {
		if progress != nil {
			progress.Write([]byte{b})
		}
	}
	out, err := func() ([]byte, error) {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("sandbox child: reading request: %w", err)
		}
		var req childRequest
		if err := json.Unmarshal(line, &req); err != nil {
			return nil, fmt.Errorf("sandbox child: bad request: %w", err)
		}
		state, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("sandbox child: reading state: %w", err)
		}
		// From here on a runaway allocation fails inside this process
		// instead of waking the OS OOM killer.
		if err := side.limitMemory(childMemoryLimit(req.Limits, len(state))); err != nil {
			return nil, fmt.Errorf("sandbox child: %w", err)
		}
		wasm, err := os.ReadFile(req.WasmPath)
		if err != nil {
			return nil, fmt.Errorf("sandbox child: %w", err)
		}
		if req.SHA256 != "" {
			if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != req.SHA256 {
				return nil, fmt.Errorf("sandbox child: %s changed after verification", req.WasmPath)
			}
		}
		t0 := time.Now()
		metered, info, err := instrument(wasm)
		if err != nil {
			resp.Info = info
			return nil, err
		}
		instrumentTime := time.Since(t0)
		e, err := newEngine(ctx, req.CacheDir, req.Limits, false)
		if err != nil {
			return nil, err
		}
		defer e.close(ctx)
		sum := sha256.Sum256(metered)
		unlock := lockCompile(req.CacheDir, hex.EncodeToString(sum[:]))
		var unlockOnce sync.Once
		defer unlockOnce.Do(unlock)
		signal(progressLocked)
		out, info, tm, err := e.run(ctx, call{Op: req.Op, Metered: metered, State: state, Limits: req.Limits,
			OnCompiled: func() {
				unlockOnce.Do(unlock)
				signal(progressCompiled)
			}})
		tm.Instrument = instrumentTime
		resp.Info, resp.Timings = info, tm
		return out, err
	}()
	if progress != nil {
		progress.Close()
	}
	if err != nil {
		resp.Error = err.Error()
		var pe *packageError
		if errors.As(err, &pe) {
			resp.Class, resp.Error, resp.Stdout, resp.Stderr = pe.Class, pe.Msg, pe.Stdout, pe.Stderr
		}
		out = nil
	} else {
		resp.OK = true
	}
	hdr, _ := json.Marshal(resp)
	w := bufio.NewWriterSize(stdout, 1<<20)
	w.Write(hdr)
	w.WriteByte('\n')
	w.Write(out)
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

// compileTimeoutFactor bounds starting the child (until it holds the
// compile lock) and compiling, each at this many execution timeouts.
const compileTimeoutFactor = 10

// childRunningKey is a context key for a func(pid int) that runInChild
// calls once the child compiled the module and runs the guest: tests use
// it to kill the child mid-run.
type childRunningKey struct{}

// runInChild runs one call in a child process of this binary. The
// wall-clock safety net kills the child timeout after it reports that the
// module compiled, compileTimeoutFactor*timeout after it reports holding
// the compile lock, or compileTimeoutFactor*timeout after start before
// that; or when ctx is done. All of these are transient: the wall clock
// depends on the machine, never decides a package's outcome.
func runInChild(ctx context.Context, req childRequest, state []byte, timeout time.Duration) ([]byte, ModuleInfo, timings, error) {
	if !childHook.Load() {
		return nil, ModuleInfo{}, timings{}, errNoChildHook
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox child: %v", err)
	}
	hdr, _ := json.Marshal(req)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox child: %v", err)
	}
	defer pr.Close()
	killCtx, kill := context.WithCancel(ctx)
	defer kill()
	// phase names the current phase of the safety net; expired is set
	// when its timer fired.
	var phase atomic.Value
	var expired atomic.Bool
	phase.Store(fmt.Sprintf("starting (limit %v)", compileTimeoutFactor*timeout))
	timer := time.AfterFunc(compileTimeoutFactor*timeout, func() { expired.Store(true); kill() })
	defer timer.Stop()
	cmd := exec.CommandContext(killCtx, exe)
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Env = []string{childEnv + "=1"}
	cmd.Stdin = io.MultiReader(bytes.NewReader(hdr), bytes.NewReader([]byte{'\n'}), bytes.NewReader(state))
	// The child enforces the output cap; this bound only protects the node
	// from a child that misbehaves (header and stdio are small).
	stdout := &limitWriter{max: req.Limits.MaxOutputBytes + 1<<20}
	stderr := &boundedBuffer{max: stdioCap}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox child: %v", err)
	}
	onRunning, _ := ctx.Value(childRunningKey{}).(func(pid int))
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		var b [1]byte
		for {
			if n, _ := pr.Read(b[:]); n != 1 {
				return // the child exited
			}
			next, limit := "", time.Duration(0)
			switch b[0] {
			case progressLocked:
				next, limit = "compiling", compileTimeoutFactor*timeout
			case progressCompiled:
				next, limit = "running", timeout
			default:
				continue
			}
			if !timer.Stop() {
				return // already fired
			}
			phase.Store(fmt.Sprintf("%s (limit %v)", next, limit))
			timer.Reset(limit)
			if b[0] == progressCompiled && onRunning != nil {
				onRunning(cmd.Process.Pid)
			}
		}
	}()
	err = cmd.Wait()
	kill()
	<-progressDone
	if ctx.Err() != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox: %v", ctx.Err())
	}
	if expired.Load() {
		return nil, ModuleInfo{}, timings{}, transient("the wall-clock safety net expired while %s: sandbox process killed; "+
			"this depends on the machine, not on the package (retry; raise the upgrade timeout if it repeats); stderr: %s",
			phase.Load(), stderr.String())
	}
	if stdout.over {
		return nil, ModuleInfo{}, timings{}, transient("sandbox process wrote more than %d bytes (the output limit is enforced inside it)", stdout.max)
	}
	raw := stdout.buf.Bytes()
	if err != nil || bytes.IndexByte(raw, '\n') < 0 {
		// The child died without answering: killed by the OS (e.g. the OOM
		// killer), out of memory under its rlimit, or crashed. Not a
		// verdict on the package.
		return nil, ModuleInfo{}, timings{}, transient("%s", childDeath(err, stderr.String(), childMemoryLimit(req.Limits, len(state))))
	}
	return parseChildOutput(raw)
}

// parseChildOutput reads what a sandbox child that exited normally wrote
// on stdout: a response header line, then the output when the header says
// ok. A header that does not decode is transient, as is a failure without
// an error class; a classed failure is a *packageError.
func parseChildOutput(raw []byte) ([]byte, ModuleInfo, timings, error) {
	nl := bytes.IndexByte(raw, '\n')
	if nl < 0 {
		return nil, ModuleInfo{}, timings{}, transient("sandbox process exited without an answer")
	}
	var resp childResponse
	if err := json.Unmarshal(raw[:nl], &resp); err != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox process: bad response: %v", err)
	}
	// encoding/json matches member names without regard to case, so
	// {"OK":true} would decode as ok: success needs the member the child
	// writes, "ok", to be the literal true.
	if resp.OK {
		var members map[string]json.RawMessage
		if json.Unmarshal(raw[:nl], &members) != nil || string(members["ok"]) != "true" {
			return nil, ModuleInfo{}, timings{}, transient("sandbox process: bad response: no \"ok\": true member")
		}
	}
	if !resp.OK {
		if resp.Class == "" {
			return nil, resp.Info, resp.Timings, transient("%s", resp.Error)
		}
		return nil, resp.Info, resp.Timings, &packageError{Class: resp.Class, Msg: resp.Error, Stdout: resp.Stdout, Stderr: resp.Stderr}
	}
	return bytes.Clone(raw[nl+1:]), resp.Info, resp.Timings, nil
}

// childDeath explains why a sandbox process ended without an answer.
func childDeath(err error, stderr string, memLimit uint64) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("sandbox process killed by signal %v (the OS OOM killer, an operator or a crash): "+
				"not a verdict on the package, will retry; stderr: %s", ws.Signal(), stderr)
		}
	}
	if strings.Contains(stderr, "out of memory") {
		return fmt.Sprintf("sandbox process ran out of memory under its data limit of %d MiB (the guest's limit plus runtime headroom): "+
			"not a verdict on the package, will retry; stderr: %s", memLimit>>20, stderr)
	}
	if err == nil {
		return "sandbox process exited without an answer; stderr: " + stderr
	}
	return fmt.Sprintf("sandbox process failed without an answer (%v); stderr: %s", err, stderr)
}
