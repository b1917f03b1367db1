package upgrade

import (
	"context"
	"time"
)

// Void executes a void execution-log entry: nothing runs and the state
// stays, but the seq advances and history records it, exactly as on every
// other node. The same ordering rules as Execute apply (errSeqGap,
// AlreadyExecuted, ErrPaused).
func (m *Manager) Void(ctx context.Context, seq uint64, entryHash string) (Result, error) {
	_, done, err := m.exclusive(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	snap, already, err := m.orderLocked(seq)
	if err != nil || already != nil {
		return deref(already), err
	}
	return m.commitNoChange(snap, Entry{Seq: seq, EntryHash: entryHash},
		HistoryEntry{Event: EventVoid, Success: true, Result: "void entry: the validators voided this seq"})
}

// Halt pauses the executor with reason (persisted, shown by Status) and
// records it in history: the node stops executing until an operator
// resumes it. The node halts when the execution log conflicts with what
// it executed.
func (m *Manager) Halt(reason string) error {
	m.execMu.Lock()
	defer m.execMu.Unlock()
	snap := m.current()
	if snap == nil {
		return errNoState
	}
	if snap.Paused && snap.PausedReason == reason {
		return nil
	}
	next := *snap
	next.Paused, next.PausedReason = true, reason
	next.History = append(append([]HistoryEntry{}, snap.History...), HistoryEntry{
		Event: EventHalt, Version: snap.Version, PreviousVersion: snap.Version,
		ExecutedAt: m.deps.Now().UTC().Format(time.RFC3339Nano), Result: reason, PostStateSHA256: snap.StateSHA256,
	})
	if err := m.commit(&next); err != nil {
		return err
	}
	m.log.Error("executor halted", "reason", reason)
	return nil
}
