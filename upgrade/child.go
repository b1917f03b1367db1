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
	"sync"
	"sync/atomic"
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
	os.Exit(runChild(os.Stdin, os.Stdout))
}

// childHook records that this binary calls MaybeRunSandboxChild, so a
// child process of it would run the sandbox (and not, say, main again).
var childHook atomic.Bool

// ProcessIsolationAvailable reports whether this binary can run the
// sandbox in a child process: MaybeRunSandboxChild was called at startup.
func ProcessIsolationAvailable() bool { return childHook.Load() }

var errNoChildHook = errors.New("upgrade: process isolation needs upgrade.MaybeRunSandboxChild() as the first call in main (and TestMain); or use IsolationInProcess")

func runChild(stdin io.Reader, stdout io.Writer) int {
	ctx := context.Background()
	in := bufio.NewReaderSize(stdin, 1<<20)
	resp := childResponse{}
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
		wasm, err := os.ReadFile(req.WasmPath)
		if err != nil {
			return nil, fmt.Errorf("sandbox child: %w", err)
		}
		if req.SHA256 != "" {
			if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != req.SHA256 {
				return nil, fmt.Errorf("sandbox child: %s changed after verification", req.WasmPath)
			}
		}
		e, err := newEngine(ctx, req.CacheDir, req.Limits, false)
		if err != nil {
			return nil, err
		}
		defer e.close(ctx)
		// fd 3 tells the parent that compiling is over and the execution
		// deadline starts.
		compiled := os.NewFile(3, "compiled")
		unlock := lockCompile(req.CacheDir, req.SHA256)
		var unlockOnce sync.Once
		defer unlockOnce.Do(unlock)
		out, info, tm, err := e.run(ctx, call{Op: req.Op, Wasm: wasm, State: state, Limits: req.Limits,
			OnCompiled: func() {
				unlockOnce.Do(unlock)
				if compiled != nil {
					compiled.Write([]byte{1})
					compiled.Close()
				}
			}})
		resp.Info, resp.Timings = info, tm
		return out, err
	}()
	if err != nil {
		resp.Error = err.Error()
		var pe *PackageError
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

// compileTimeoutFactor bounds a compile at this many execution timeouts.
const compileTimeoutFactor = 10

// runInChild runs one call in a child process of this binary. The child is
// killed timeout after it reports that the module compiled (or
// compileTimeoutFactor*timeout after start), or when ctx is done.
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
	var deadlineHit atomic.Bool
	killCtx, kill := context.WithCancel(ctx)
	defer kill()
	compileTimer := time.AfterFunc(compileTimeoutFactor*timeout, func() { deadlineHit.Store(true); kill() })
	defer compileTimer.Stop()
	go func() {
		var b [1]byte
		if n, _ := pr.Read(b[:]); n == 1 && compileTimer.Stop() {
			t := time.AfterFunc(timeout, func() { deadlineHit.Store(true); kill() })
			<-killCtx.Done()
			t.Stop()
		}
	}()
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
	err = cmd.Wait()
	kill() // ends the deadline goroutine
	if ctx.Err() != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox: %v", ctx.Err())
	}
	if deadlineHit.Load() {
		return nil, ModuleInfo{}, timings{}, &PackageError{Class: ClassTimeout,
			Msg: fmt.Sprintf("execution deadline of %v exceeded (sandbox process killed)", timeout), Stderr: stderr.String()}
	}
	if stdout.over {
		return nil, ModuleInfo{}, timings{}, pkgErr(ClassOutputLimit, "sandbox output exceeds %d bytes", req.Limits.MaxOutputBytes)
	}
	raw := stdout.buf.Bytes()
	nl := bytes.IndexByte(raw, '\n')
	if err != nil || nl < 0 {
		// The child died without answering: e.g. the OS killed it. Not a
		// verdict on the package; report it as transient.
		return nil, ModuleInfo{}, timings{}, transient("sandbox process failed: %v; stderr: %s", err, stderr.String())
	}
	var resp childResponse
	if err := json.Unmarshal(raw[:nl], &resp); err != nil {
		return nil, ModuleInfo{}, timings{}, transient("sandbox process: bad response: %v", err)
	}
	if !resp.OK {
		if resp.Class == "" {
			return nil, resp.Info, resp.Timings, transient("%s", resp.Error)
		}
		return nil, resp.Info, resp.Timings, &PackageError{Class: resp.Class, Msg: resp.Error, Stdout: resp.Stdout, Stderr: resp.Stderr}
	}
	return bytes.Clone(raw[nl+1:]), resp.Info, resp.Timings, nil
}
