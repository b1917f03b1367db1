package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// ErrNeedPreState is returned by RollbackNetwork when this node has no
// backup of the state to restore (it joined later, or the backup does
// not match the recorded hash): the caller recomputes the state (Replay)
// and passes it. Nothing changed.
var ErrNeedPreState = errors.New("upgrade: no verified backup of the state to restore")

// exclusive is begin plus the executor's lock, for the operations that
// read the snapshot and commit the next one; done releases both.
func (m *Manager) exclusive(ctx context.Context) (context.Context, func(), error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	m.execMu.Lock()
	return ctx, func() { m.execMu.Unlock(); done() }, nil
}

// orderLocked checks that seq is the next entry; it returns the snapshot,
// or the result of the entry at seq when it was already executed.
func (m *Manager) orderLocked(seq uint64) (*snapshot, *Result, error) {
	snap := m.current()
	switch {
	case snap == nil:
		return nil, nil, errNoState
	case seq <= snap.LastSeq:
		r := Result{Seq: seq, AlreadyExecuted: true, Version: snap.Version, PostStateSHA256: snap.StateSHA256}
		for _, h := range snap.History {
			if h.Seq == seq && (h.EntryHash != "" || h.Event == EventUpgrade) {
				r.ProposalID, r.Success, r.Version, r.PreviousVersion = h.ProposalID, h.Success, h.Version, h.PreviousVersion
				r.PostStateSHA256, r.ErrorClass, r.Error, r.FuelUsed = h.PostStateSHA256, h.ErrorClass, h.Error, h.FuelUsed
			}
		}
		return nil, &r, nil
	case snap.Paused:
		return nil, nil, ErrPaused
	case seq != snap.LastSeq+1:
		return nil, nil, fmt.Errorf("%w: got seq %d, next is %d", errSeqGap, seq, snap.LastSeq+1)
	}
	return snap, nil, nil
}

// Skip executes an entry that changes no state — a cancel (event
// EventCancelled) — exactly as every other node does: the seq advances
// and history records it.
func (m *Manager) Skip(ctx context.Context, e Entry, event, result string) (Result, error) {
	_, done, err := m.exclusive(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	snap, already, err := m.orderLocked(e.Seq)
	if err != nil || already != nil {
		return deref(already), err
	}
	return m.commitNoChange(snap, e, HistoryEntry{Event: event, Success: true, Result: result})
}

// Schedule executes the entry of a scheduled upgrade: it fetches,
// verifies and dry-runs the package on the current state (a transient
// failure is an error: nothing changes, retry), then records the entry as
// scheduled — no state changes; the upgrade runs at its activate entry.
// The result says whether the dry run succeeded (readiness) and the state
// hash it would give.
func (m *Manager) Schedule(ctx context.Context, e Entry) (Result, error) {
	test, err := m.Test(ctx, e.Package)
	if err != nil {
		return Result{}, err
	}
	_, done, err := m.exclusive(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	snap, already, err := m.orderLocked(e.Seq)
	if err != nil || already != nil {
		return deref(already), err
	}
	if snap.Version != test.PreviousVersion {
		return Result{}, transient("the state changed during the dry run")
	}
	h := HistoryEntry{Event: EventScheduled, ProposalID: e.ProposalID, Success: test.Success, ErrorClass: test.ErrorClass,
		Error: test.Error, FuelUsed: test.FuelUsed}
	h.Result = fmt.Sprintf("scheduled %s; the dry run gives state %s", e.Version, test.StateSHA256)
	if !test.Success {
		h.Result = fmt.Sprintf("scheduled %s; the dry run fails (%s)", e.Version, test.ErrorClass)
	}
	r, err := m.commitNoChange(snap, e, h)
	r.Success, r.ErrorClass, r.Error = test.Success, test.ErrorClass, test.Error
	r.WouldBeSHA256 = test.StateSHA256
	return r, err
}

// commitNoChange records entry e with history h without changing state
// or version.
func (m *Manager) commitNoChange(snap *snapshot, e Entry, h HistoryEntry) (Result, error) {
	next := *snap
	next.LastSeq = e.Seq
	h.Seq, h.EntryHash, h.Version, h.PreviousVersion = e.Seq, e.EntryHash, snap.Version, snap.Version
	if h.ProposalID == "" {
		h.ProposalID = e.ProposalID
	}
	h.ExecutedAt = m.deps.Now().UTC().Format(time.RFC3339Nano)
	h.PostStateSHA256, h.PreStateSHA256 = snap.StateSHA256, snap.StateSHA256
	next.History = append(append([]HistoryEntry{}, snap.History...), h)
	if err := m.commit(&next); err != nil {
		return Result{}, err
	}
	m.log.Info("entry recorded", "seq", e.Seq, "event", h.Event, "proposal", h.ProposalID)
	return Result{Seq: e.Seq, ProposalID: h.ProposalID, Success: h.Success, Version: snap.Version,
		PreviousVersion: snap.Version, PostStateSHA256: snap.StateSHA256}, nil
}

func deref(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

// PreStateOf returns the state from before the upgrade executed at
// target (from its backup, checked against the hash history recorded),
// or ErrNeedPreState.
func (m *Manager) PreStateOf(target uint64) ([]byte, error) {
	snap := m.current()
	if snap == nil {
		return nil, errNoState
	}
	h, ok := runAt(snap, target)
	if !ok {
		return nil, fmt.Errorf("upgrade: no upgrade ran at entry %d", target)
	}
	if !h.Success {
		return snap.State, nil // it changed nothing; nothing ran after it
	}
	b, err := m.store.readBackup(h.PreviousVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: backup of %s: %v", ErrNeedPreState, h.PreviousVersion, err)
	}
	canon, sum, err := canonicalState(b)
	if err != nil || (h.PreStateSHA256 != "" && sum != h.PreStateSHA256) {
		return nil, fmt.Errorf("%w: the backup of %s does not hash to %s", ErrNeedPreState, h.PreviousVersion, h.PreStateSHA256)
	}
	return canon, nil
}

// runAt is the history record of the package that ran at seq (an
// upgrade, or a network rollback).
func runAt(snap *snapshot, seq uint64) (HistoryEntry, bool) {
	for _, h := range snap.History {
		if h.Seq == seq && (h.Event == EventUpgrade || h.Event == EventNetworkRollback) {
			return h, true
		}
	}
	return HistoryEntry{}, false
}

// RollbackNetwork executes a rollback entry: every node restores the state
// from before the upgrade at target — preState when given (recomputed by
// the caller), else the verified backup (ErrNeedPreState when there is
// none) — with global.version set to version, which must raise the
// current one (else a deterministic version_not_raised failure).
func (m *Manager) RollbackNetwork(ctx context.Context, e Entry, target uint64, version string, preState []byte) (Result, error) {
	_, done, err := m.exclusive(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	snap, already, err := m.orderLocked(e.Seq)
	if err != nil || already != nil {
		return deref(already), err
	}
	h := HistoryEntry{Event: EventNetworkRollback, ProposalID: e.ProposalID, Seq: e.Seq, EntryHash: e.EntryHash,
		PreviousVersion: snap.Version, ExecutedAt: m.deps.Now().UTC().Format(time.RFC3339Nano), PreStateSHA256: snap.StateSHA256}
	fail := func(class, msg string) (Result, error) {
		h.Version, h.PostStateSHA256, h.ErrorClass, h.Error = snap.Version, snap.StateSHA256, class, msg
		next := *snap
		next.LastSeq = e.Seq
		next.History = append(append([]HistoryEntry{}, snap.History...), h)
		if err := m.commit(&next); err != nil {
			return Result{}, err
		}
		return Result{Seq: e.Seq, ProposalID: e.ProposalID, Version: snap.Version, PreviousVersion: snap.Version,
			PostStateSHA256: snap.StateSHA256, ErrorClass: class, Error: msg}, nil
	}
	if !genesis.ValidVersion(version) || genesis.CompareVersions(version, snap.Version) <= 0 {
		return fail(ClassVersion, fmt.Sprintf("rollback version %s does not raise the current version %s", version, snap.Version))
	}
	target0, ok := runAt(snap, target)
	if !ok {
		return fail(ClassBadPackage, fmt.Sprintf("no upgrade ran at entry %d", target))
	}
	if preState == nil {
		pre, err := m.PreStateOf(target)
		if err != nil {
			return Result{}, err
		}
		preState = pre
	}
	canon, sum, err := canonicalState(preState)
	if err != nil || (target0.Success && target0.PreStateSHA256 != "" && sum != target0.PreStateSHA256) {
		return Result{}, fmt.Errorf("%w: the state given does not hash to %s", ErrNeedPreState, target0.PreStateSHA256)
	}
	out, outSum, err := withVersion(canon, version)
	if err != nil {
		return fail(ClassInvalidOutput, err.Error())
	}
	if err := m.store.backup(snap.Version, snap.State); err != nil {
		return Result{}, transient("backup of %s: %v", snap.Version, err)
	}
	h.Success, h.Version, h.PostStateSHA256 = true, version, outSum
	h.Result = fmt.Sprintf("rolled back entry %d: the state from before it, as %s", target, version)
	next := *snap
	next.LastSeq, next.Version, next.State, next.StateSHA256 = e.Seq, version, out, outSum
	next.History = append(append([]HistoryEntry{}, snap.History...), h)
	if err := m.commit(&next); err != nil {
		return Result{}, err
	}
	m.log.Warn("network rollback", "seq", e.Seq, "target", target, "version", version, "state", outSum)
	return Result{Seq: e.Seq, ProposalID: e.ProposalID, Success: true, Version: version, PreviousVersion: snap.Version,
		PostStateSHA256: outSum}, nil
}

// withVersion sets global.version of a canonical state and checks the
// result still has readable rules.
func withVersion(state []byte, version string) ([]byte, string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(state, &doc); err != nil {
		return nil, "", err
	}
	var global map[string]json.RawMessage
	if err := json.Unmarshal(doc["global"], &global); err != nil {
		return nil, "", fmt.Errorf("state has no global object: %v", err)
	}
	v, _ := json.Marshal(version)
	global["version"] = v
	g, err := json.Marshal(global)
	if err != nil {
		return nil, "", err
	}
	doc["global"] = g
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	return validateOutput(b, version)
}

// Replay runs package p on state (at version) without touching the
// store — the same run Execute makes — and returns the new canonical
// state and its hash. A node that lacks a backup recomputes an old state
// this way from the log. Deterministic failures are *packageError.
func (m *Manager) Replay(ctx context.Context, state []byte, version string, p Package) ([]byte, string, error) {
	canon, sum, err := canonicalState(state)
	if err != nil {
		return nil, "", err
	}
	res, err := m.apply(ctx, &snapshot{Version: version, State: canon, StateSHA256: sum}, p)
	return res.out, res.sum, err
}

// SetVersion returns state (a network state document) with global.version
// set to version, canonical, and its hash — what a network rollback makes
// of the state it restores.
func SetVersion(state []byte, version string) ([]byte, string, error) {
	canon, _, err := canonicalState(state)
	if err != nil {
		return nil, "", err
	}
	return withVersion(canon, version)
}
