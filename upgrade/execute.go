package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Result is the outcome of one Execute.
type Result struct {
	Seq             uint64 `json:"seq"`
	ProposalID      string `json:"proposal_id"`
	Success         bool   `json:"success"`
	Version         string `json:"version"`          // version after the entry
	PreviousVersion string `json:"previous_version"` // version before the entry
	// PostStateSHA256 is the state hash after the entry (the unchanged
	// state's hash on failure).
	PostStateSHA256 string        `json:"post_state_sha256"`
	ErrorClass      string        `json:"error_class,omitempty"`
	Error           string        `json:"error,omitempty"`
	Duration        time.Duration `json:"duration"`
	// FuelUsed is the fuel the package used (deterministic: the same on
	// every node); 0 when it did not run.
	FuelUsed        uint64 `json:"fuel_used,omitempty"`
	AlreadyExecuted bool   `json:"already_executed,omitempty"`
	// WouldBeSHA256 is, for a scheduled entry, the state hash its dry run
	// gives (what activation will produce).
	WouldBeSHA256 string `json:"would_be_sha256,omitempty"`
}

// Execute runs one execution-log entry: download → verify → compile → run
// on a copy → validate → backup → commit (state, version, seq, history
// together) .
//
// Entries must come in seq order: e.Seq must be LastExecutedSeq()+1; an
// already executed seq returns Result{AlreadyExecuted: true}, a gap
// errSeqGap. Deterministic failures are committed as executed-but-failed
// (state unchanged, seq advances, history records it) and returned as
// Result{Success: false}, nil. Transient failures return an error wrapping
// errTransient and change nothing: among them every download failure
// (a *fetchError: bytes that do not match package_hash or package_size,
// network errors, deadlines), after trying e.URL and each of e.Sources.
// The package is downloaded before the executor's lock is taken, so
// Rollback and Resume are not held up by a slow transfer. After a
// Rollback, Execute returns ErrPaused until Resume.
func (m *Manager) Execute(ctx context.Context, e Entry) (Result, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	if err := m.prefetch(ctx, e); err != nil {
		m.log.Warn("package fetch failed transiently; will retry", "seq", e.Seq, "proposal", e.ProposalID, "err", err)
		return Result{}, err
	}
	m.execMu.Lock()
	defer m.execMu.Unlock()
	snap, already, err := m.orderLocked(e.Seq)
	if err != nil {
		return Result{}, err
	}
	if already != nil {
		if already.ProposalID == "" {
			already.ProposalID = e.ProposalID
		}
		return *already, nil
	}
	res, err := m.apply(ctx, snap, e.Package)
	newState, newSum, fuelUsed, elapsed := res.out, res.sum, res.fuel, res.took
	if err != nil && classOf(err) == "" {
		m.log.Warn("upgrade failed transiently; will retry", "seq", e.Seq, "proposal", e.ProposalID, "err", err)
		return Result{}, err
	}
	h := HistoryEntry{
		Event: EventUpgrade, ProposalID: e.ProposalID, Seq: e.Seq, EntryHash: e.EntryHash, PreviousVersion: snap.Version,
		ExecutedAt: m.deps.Now().UTC().Format(time.RFC3339Nano), DurationMS: elapsed.Milliseconds(),
		FuelUsed: fuelUsed, PreStateSHA256: snap.StateSHA256,
	}
	next := *snap
	next.LastSeq = e.Seq
	if err != nil {
		h.Version, h.PostStateSHA256 = snap.Version, snap.StateSHA256
		h.ErrorClass, h.Error = classOf(err), err.Error()
	} else {
		// The backup of the state we are leaving, before the commit point.
		if berr := m.store.backup(snap.Version, snap.State); berr != nil {
			return Result{}, transient("backup of %s: %v", snap.Version, berr)
		}
		h.Success, h.Version, h.PostStateSHA256 = true, e.Version, newSum
		h.Result = fmt.Sprintf("upgraded %s -> %s", snap.Version, e.Version)
		next.Version, next.State, next.StateSHA256 = e.Version, newState, newSum
	}
	next.History = append(append([]HistoryEntry{}, snap.History...), h)
	if cerr := m.commit(&next); cerr != nil {
		return Result{}, cerr
	}
	m.log.Info("executed entry", "seq", e.Seq, "proposal", e.ProposalID, "success", h.Success,
		"version", h.Version, "class", h.ErrorClass, "duration", elapsed, "dry_run_reused", res.reused)
	return Result{
		Seq: e.Seq, ProposalID: e.ProposalID, Success: h.Success, Version: h.Version,
		PreviousVersion: h.PreviousVersion, PostStateSHA256: h.PostStateSHA256,
		ErrorClass: h.ErrorClass, Error: h.Error, Duration: elapsed, FuelUsed: fuelUsed,
	}, nil
}

// prefetch downloads e's package into the verified cache before Execute
// takes execMu, so a slow or failing transfer never blocks Rollback or
// Resume; a transient failure returns at once. It fetches only what
// Execute will need: nothing for a replayed, out-of-order or paused entry,
// or one that fails before its package is read (apply commits that).
// apply repeats every check under execMu and finds the package in the
// cache.
func (m *Manager) prefetch(ctx context.Context, e Entry) error {
	snap := m.current()
	if snap == nil || snap.Paused || e.Seq != snap.LastSeq+1 {
		return nil
	}
	netLim, err := networkLimits(snap.State)
	if err != nil {
		return nil
	}
	h, err := m.precheck(snap, e.Package, netLim)
	if err != nil {
		return nil
	}
	if _, err := m.fetch.get(ctx, e.Package, h); err != nil && classOf(err) == "" {
		return err
	}
	return nil
}

// precheck runs the checks of p that need no package bytes — its fields,
// the network's max_package_bytes, the version, this node's cap — and
// returns its normalised hash.
func (m *Manager) precheck(snap *snapshot, p Package, netLim genesis.Limits) (string, error) {
	h, err := p.check(netLim.MaxPackageBytes)
	if err != nil {
		return "", err
	}
	if !p.Rollback && genesis.CompareVersions(p.Version, snap.Version) <= 0 {
		return "", pkgErr(ClassVersion, "version %s does not raise the current version %s", p.Version, snap.Version)
	}
	if err := packageCap(m.cfg, netLim, p); err != nil {
		return "", err
	}
	return h, nil
}

// apply fetches, verifies and runs p against snap's state, with the
// limits of that state, and validates the output. Deterministic failures
// are *packageError. A run of the same package
// on the same state that was kept (runMemo) or is under way is not run
// again: its outcome is returned, marked reused.
func (m *Manager) apply(ctx context.Context, snap *snapshot, p Package) (runOutcome, error) {
	netLim, err := networkLimits(snap.State)
	if err != nil {
		return runOutcome{}, err
	}
	h, err := m.precheck(snap, p, netLim)
	if err != nil {
		return runOutcome{}, err
	}
	lim, err := sandboxLimits(m.cfg, netLim)
	if err != nil {
		return runOutcome{}, err
	}
	key := runKey{stateSHA256: snap.StateSHA256, packageHash: h, version: p.Version}
	return m.runs.do(ctx, key, func() (runOutcome, error) {
		start := time.Now()
		res, err := m.run(ctx, snap, p, h, netLim, lim)
		res.took = time.Since(start)
		return res, err
	})
}

// run is apply's run of the package, after the checks that need no bytes.
func (m *Manager) run(ctx context.Context, snap *snapshot, p Package, h string, netLim genesis.Limits, lim limits) (runOutcome, error) {
	path, err := m.fetch.get(ctx, p, h)
	if err != nil {
		return runOutcome{}, err
	}
	if fi, err := os.Stat(path); err != nil {
		return runOutcome{}, transient("package cache: %v", err)
	} else if fi.Size() > netLim.MaxPackageBytes {
		// Only possible without a declared package_size.
		return runOutcome{}, pkgErr(ClassSizeLimit, "package is %d bytes, the network's max_package_bytes is %d", fi.Size(), netLim.MaxPackageBytes)
	}
	out, info, tm, err := m.runSandbox(ctx, "upgrade", path, h, snap.State, lim)
	if err != nil {
		return runOutcome{info: info, fuel: tm.FuelUsed}, err
	}
	canon, sum, err := validateOutput(out, p.Version)
	return runOutcome{out: canon, sum: sum, info: info, fuel: tm.FuelUsed}, err
}

// validateOutput checks a package's output: a JSON object whose
// global.version is version and from which governance rules can be read.
func validateOutput(out []byte, version string) ([]byte, string, error) {
	canon, sum, err := canonicalState(out)
	if err != nil {
		return nil, "", pkgErr(ClassInvalidOutput, "output is not a JSON object: %v (starts %q)", err, truncate(out, 64))
	}
	if sv := stateVersion(canon); sv != version {
		return nil, "", pkgErr(ClassInvalidOutput, "output global.version is %q, the entry's version is %q", sv, version)
	}
	if _, err := genesis.RulesFromState(canon); err != nil {
		return nil, "", pkgErr(ClassInvalidOutput, "output breaks governance: %v", err)
	}
	return canon, sum, nil
}

// runSandbox runs one call with the configured isolation and the given
// limits.
func (m *Manager) runSandbox(ctx context.Context, op, wasmPath, sha string, state []byte, lim limits) ([]byte, ModuleInfo, timings, error) {
	out, info, tm, err := runCall(ctx, m.cfg.Isolation, childRequest{
		Op: op, WasmPath: wasmPath, SHA256: sha, CacheDir: m.cfg.CompilationCacheDir, Limits: lim,
	}, state, m.cfg.Timeout)
	if err != nil && ctx.Err() != nil {
		return nil, info, tm, transient("sandbox: %v", ctx.Err())
	}
	return out, info, tm, err
}

// runCall runs one sandbox call in a child process or in this process;
// timeout bounds the guest's run after compiling.
func runCall(ctx context.Context, iso Isolation, req childRequest, state []byte, timeout time.Duration) ([]byte, ModuleInfo, timings, error) {
	if iso == IsolationProcess {
		return runInChild(ctx, req, state, timeout)
	}
	wasm, err := os.ReadFile(req.WasmPath)
	if err != nil {
		return nil, ModuleInfo{}, timings{}, fmt.Errorf("upgrade: %w", err)
	}
	if req.SHA256 != "" {
		if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != req.SHA256 {
			return nil, ModuleInfo{}, timings{}, transient("%s changed after verification", req.WasmPath)
		}
	}
	e, err := newEngine(ctx, req.CacheDir, req.Limits, true)
	if err != nil {
		return nil, ModuleInfo{}, timings{}, err
	}
	defer e.close(context.Background())
	cctx, cancel := context.WithTimeout(ctx, compileTimeoutFactor*timeout)
	defer cancel()
	out, info, tm, err := e.run(cctx, call{Op: req.Op, Wasm: wasm, State: state, Limits: req.Limits, Timeout: timeout})
	if err != nil && ctx.Err() != nil {
		return nil, info, tm, transient("sandbox: %v", ctx.Err())
	}
	return out, info, tm, err
}

// TestResult is the outcome of a dry run.
type TestResult struct {
	ProposalID      string `json:"proposal_id"`
	Success         bool   `json:"success"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	// StateSHA256 is the hash of the would-be state.
	StateSHA256 string        `json:"state_sha256,omitempty"`
	Diff        []string      `json:"diff,omitempty"` // summary of changed paths
	ErrorClass  string        `json:"error_class,omitempty"`
	Error       string        `json:"error,omitempty"`
	Duration    time.Duration `json:"duration"`
	Module      ModuleInfo    `json:"module"`
	// FuelUsed is the fuel the package used on the current state.
	FuelUsed uint64 `json:"fuel_used,omitempty"`
	// Limits are the current state's execution limits the dry run used.
	Limits genesis.Limits `json:"limits"`
}

// Test dry-runs p on a copy of the current state. It changes nothing in
// the state store (state, version, seq, history, backups); it may fill the
// package and compilation caches, which hold only verified content.
// Deterministic failures are in the result; transient ones are errors.
func (m *Manager) Test(ctx context.Context, p Package) (TestResult, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return TestResult{}, err
	}
	defer done()
	snap := m.current()
	if snap == nil {
		return TestResult{}, errNoState
	}
	res, err := m.apply(ctx, snap, p)
	out, sum := res.out, res.sum
	r := TestResult{ProposalID: p.ProposalID, Version: p.Version, PreviousVersion: snap.Version,
		Duration: res.took, Module: res.info, FuelUsed: res.fuel}
	r.Limits, _ = networkLimits(snap.State)
	if err != nil {
		if classOf(err) == "" {
			return TestResult{}, err
		}
		r.ErrorClass, r.Error = classOf(err), err.Error()
		return r, nil
	}
	r.Success, r.StateSHA256 = true, sum
	r.Diff = diffSummary(snap.State, out, 50)
	return r, nil
}

// RollbackResult is the outcome of a Rollback.
type RollbackResult struct {
	ProposalID      string `json:"proposal_id"`
	RestoredVersion string `json:"restored_version"`
	PreviousVersion string `json:"previous_version"` // the version rolled back from
	StateSHA256     string `json:"state_sha256"`
	Message         string `json:"message"`
}

// Rollback restores the backup taken before proposalID's upgrade (state
// and version together), records a rollback event and pauses the executor
// (persisted) until Resume: this node now deliberately differs from the
// execution log.
func (m *Manager) Rollback(ctx context.Context, proposalID string) (RollbackResult, error) {
	_, done, err := m.exclusive(ctx)
	if err != nil {
		return RollbackResult{}, err
	}
	defer done()
	snap := m.current()
	if snap == nil {
		return RollbackResult{}, errNoState
	}
	var target *HistoryEntry
	for i := range snap.History {
		h := snap.History[i]
		if h.Event == EventUpgrade && h.Success && h.ProposalID == proposalID {
			target = &h
		}
	}
	if target == nil {
		return RollbackResult{}, fmt.Errorf("%w: %q", ErrNotFound, proposalID)
	}
	backup, err := m.store.readBackup(target.PreviousVersion)
	if err != nil {
		return RollbackResult{}, fmt.Errorf("upgrade: rollback %s: backup of %s: %w", proposalID, target.PreviousVersion, err)
	}
	canon, sum, err := canonicalState(backup)
	if err != nil || stateVersion(canon) != target.PreviousVersion {
		return RollbackResult{}, fmt.Errorf("upgrade: rollback %s: backup of %s is corrupt", proposalID, target.PreviousVersion)
	}
	if snap.Version != target.PreviousVersion {
		if err := m.store.backup(snap.Version, snap.State); err != nil {
			return RollbackResult{}, transient("backup of %s: %v", snap.Version, err)
		}
	}
	next := *snap
	next.Version, next.State, next.StateSHA256 = target.PreviousVersion, canon, sum
	next.Paused, next.PausedReason = true, "rolled back "+proposalID
	msg := fmt.Sprintf("rolled back %s: %s -> %s; executor paused until resume", proposalID, snap.Version, target.PreviousVersion)
	next.History = append(append([]HistoryEntry{}, snap.History...), HistoryEntry{
		Event: EventRollback, ProposalID: proposalID, Seq: target.Seq, Version: target.PreviousVersion,
		PreviousVersion: snap.Version, ExecutedAt: m.deps.Now().UTC().Format(time.RFC3339Nano),
		Success: true, Result: msg, PostStateSHA256: sum,
	})
	if err := m.commit(&next); err != nil {
		return RollbackResult{}, err
	}
	m.log.Warn("rolled back", "proposal", proposalID, "from", snap.Version, "to", target.PreviousVersion)
	return RollbackResult{ProposalID: proposalID, RestoredVersion: target.PreviousVersion,
		PreviousVersion: snap.Version, StateSHA256: sum, Message: msg}, nil
}

// Resume lets Execute continue after a Rollback; a no-op when not paused.
func (m *Manager) Resume() error {
	m.execMu.Lock()
	defer m.execMu.Unlock()
	snap := m.current()
	if snap == nil {
		return errNoState
	}
	if !snap.Paused {
		return nil
	}
	next := *snap
	next.Paused, next.PausedReason = false, ""
	next.History = append(append([]HistoryEntry{}, snap.History...), HistoryEntry{
		Event: EventResume, Version: snap.Version, PreviousVersion: snap.Version,
		ExecutedAt: m.deps.Now().UTC().Format(time.RFC3339Nano), Success: true,
		Result: "executor resumed", PostStateSHA256: snap.StateSHA256,
	})
	if err := m.commit(&next); err != nil {
		return err
	}
	return nil
}
