package upgrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
)

// File names under <data>/upgrades.
const (
	stateFile   = "network_state.json"
	versionFile = "current_version.txt"
	historyFile = "upgrade_history.json"
	metaFile    = "executor.json"
	journalFile = "commit.json"
	versionsDir = "versions"
	cacheDir    = "cache"
	wasmCache   = "wasm-cache"
)

// HistoryEntry is one upgrade attempt, rollback or resume.
type HistoryEntry struct {
	Event      string `json:"event"` // "upgrade", "void", "rollback", "resume" or "halt"
	ProposalID string `json:"proposal_id,omitempty"`
	Seq        uint64 `json:"seq,omitempty"`
	// EntryHash is the hash of the execution-log entry executed (upgrade,
	// void): the node halts if a different entry ever becomes final there.
	EntryHash       string `json:"entry_hash,omitempty"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	ExecutedAt      string `json:"executed_at"`
	Success         bool   `json:"success"`
	Result          string `json:"result,omitempty"`
	ErrorClass      string `json:"error_class,omitempty"`
	Error           string `json:"error,omitempty"`
	PostStateSHA256 string `json:"post_state_sha256"`
	// PreStateSHA256 is the state hash before the entry (upgrades and
	// network rollbacks): a network rollback checks a backup against it.
	PreStateSHA256 string `json:"pre_state_sha256,omitempty"`
	DurationMS     int64  `json:"duration_ms"`
	// FuelUsed is the fuel the package used (upgrade events that ran it).
	FuelUsed uint64 `json:"fuel_used,omitempty"`
}

// History events.
const (
	EventUpgrade  = "upgrade"
	EventVoid     = "void"
	EventRollback = "rollback" // a local rollback (operator's brake)
	EventResume   = "resume"
	EventHalt     = "halt"
	// EventScheduled: a scheduled upgrade's entry was prepared (fetched,
	// verified, dry-run); it runs at its activate entry.
	EventScheduled = "scheduled"
	// EventCancelled: a cancel entry cancelled a scheduled or approved
	// upgrade.
	EventCancelled = "cancelled"
	// EventNetworkRollback: a rollback entry restored, on every node, the
	// state from before an upgrade under a new version.
	EventNetworkRollback = "network_rollback"
)

// snapshot is everything that changes together at a commit.
type snapshot struct {
	Version      string          `json:"version"`
	State        json.RawMessage `json:"state"` // canonical JSON
	StateSHA256  string          `json:"state_sha256"`
	LastSeq      uint64          `json:"last_executed_seq"`
	Paused       bool            `json:"paused"`
	PausedReason string          `json:"paused_reason,omitempty"`
	History      []HistoryEntry  `json:"history"`
}

// meta is executor.json.
type meta struct {
	LastSeq      uint64 `json:"last_executed_seq"`
	Paused       bool   `json:"paused"`
	PausedReason string `json:"paused_reason,omitempty"`
	StateSHA256  string `json:"state_sha256"`
}

// store keeps the executor's files. A commit first writes the whole next
// snapshot to commit.json (temp + fsync + rename: the single commit
// point), then rewrites the individual files and removes the journal.
// Opening a store with a journal present finishes that commit, so a crash
// at any point leaves the old snapshot or the new one, never a mix.
type store struct {
	dir string
	// fail, when set (tests), is called before each step; an error stops
	// the commit there as if the process had crashed.
	fail func(step string) error
}

func (s *store) path(name ...string) string {
	return filepath.Join(append([]string{s.dir}, name...)...)
}

func (s *store) step(name string) error {
	if s.fail != nil {
		return s.fail(name)
	}
	return nil
}

// writeFile writes data to path atomically (internal/atomicfile: temp
// file, fsync, rename, fsync of the directory), mode 0600.
func (s *store) writeFile(step, path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := s.step(step + ":rename"); err != nil {
		return err
	}
	return f.Commit()
}

// commitSteps name the failure points of a commit, in order.
var commitSteps = []string{
	"journal", "journal:rename", "state", "state:rename", "version", "version:rename",
	"history", "history:rename", "meta", "meta:rename", "clear",
}

// commit makes next the stored snapshot. It returns committed=true once
// the journal is durable: from then on the new snapshot is the truth even
// if applying it to the individual files fails (the next open or commit
// finishes it).
func (s *store) commit(next *snapshot) (committed bool, err error) {
	// No HTML escaping: the state must stay byte-for-byte canonical.
	var jb bytes.Buffer
	enc := json.NewEncoder(&jb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(next); err != nil {
		return false, err
	}
	j := jb.Bytes()
	if err := s.step("journal"); err != nil {
		return false, err
	}
	if err := s.writeFile("journal", s.path(journalFile), j); err != nil {
		return false, err
	}
	return true, s.apply(next)
}

// apply writes the individual files of a journaled snapshot and clears the
// journal.
func (s *store) apply(next *snapshot) error {
	hist := next.History
	if hist == nil {
		hist = []HistoryEntry{}
	}
	h, err := json.MarshalIndent(hist, "", "  ")
	if err != nil {
		return err
	}
	m, _ := json.MarshalIndent(meta{LastSeq: next.LastSeq, Paused: next.Paused,
		PausedReason: next.PausedReason, StateSHA256: next.StateSHA256}, "", "  ")
	for _, f := range []struct {
		step, name string
		data       []byte
	}{
		{"state", stateFile, next.State},
		{"version", versionFile, []byte(next.Version + "\n")},
		{"history", historyFile, h},
		{"meta", metaFile, m},
	} {
		if err := s.step(f.step); err != nil {
			return err
		}
		if err := s.writeFile(f.step, s.path(f.name), f.data); err != nil {
			return err
		}
	}
	if err := s.step("clear"); err != nil {
		return err
	}
	if err := os.Remove(s.path(journalFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(s.dir)
}

// load reads the stored snapshot, finishing an interrupted commit first.
// It returns nil, nil when no state was ever installed.
func (s *store) load() (*snapshot, error) {
	if err := atomicfile.RemoveTemps(s.dir); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if j, err := os.ReadFile(s.path(journalFile)); err == nil {
		var next snapshot
		if err := json.Unmarshal(j, &next); err != nil {
			return nil, fmt.Errorf("upgrade: %s is corrupt: %w", s.path(journalFile), err)
		}
		if err := s.apply(&next); err != nil {
			return nil, fmt.Errorf("upgrade: finishing an interrupted commit: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	v, err := os.ReadFile(s.path(versionFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(s.path(stateFile)); serr == nil {
			return nil, fmt.Errorf("upgrade: %s exists without %s", stateFile, versionFile)
		}
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	snap := &snapshot{Version: strings.TrimSpace(string(v))}
	state, err := os.ReadFile(s.path(stateFile))
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	canon, sum, err := canonicalState(state)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %s: %w", s.path(stateFile), err)
	}
	snap.State, snap.StateSHA256 = canon, sum
	if sv := stateVersion(canon); sv != snap.Version {
		return nil, fmt.Errorf("upgrade: %s says %q but the state's global.version is %q", versionFile, snap.Version, sv)
	}
	if b, err := os.ReadFile(s.path(historyFile)); err == nil {
		if err := json.Unmarshal(b, &snap.History); err != nil {
			return nil, fmt.Errorf("upgrade: %s is corrupt: %w", s.path(historyFile), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	var m meta
	if b, err := os.ReadFile(s.path(metaFile)); err == nil {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("upgrade: %s is corrupt: %w", s.path(metaFile), err)
		}
		if m.StateSHA256 != snap.StateSHA256 {
			return nil, fmt.Errorf("upgrade: %s does not match %s (state hash %s, want %s)", metaFile, stateFile, snap.StateSHA256, m.StateSHA256)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	snap.LastSeq, snap.Paused, snap.PausedReason = m.LastSeq, m.Paused, m.PausedReason
	return snap, nil
}

// backup saves state as versions/<version>/network_state.json.
func (s *store) backup(version string, state []byte) error {
	if err := s.step("backup"); err != nil {
		return err
	}
	return s.writeFile("backup", s.path(versionsDir, version, stateFile), state)
}

// readBackup returns the backup taken before leaving version.
func (s *store) readBackup(version string) ([]byte, error) {
	return os.ReadFile(s.path(versionsDir, version, stateFile))
}

// canonicalState checks that state is a JSON object and returns its
// canonical form and hash.
func canonicalState(state []byte) ([]byte, string, error) {
	t := bytes.TrimSpace(state)
	if len(t) == 0 || t[0] != '{' {
		return nil, "", errors.New("not a JSON object")
	}
	canon, err := genesis.Canonical(t)
	if err != nil {
		return nil, "", err
	}
	sum, _ := genesis.CanonicalHash(canon)
	return canon, sum, nil
}

// stateVersion returns global.version of a state ("" if absent).
func stateVersion(state []byte) string {
	var doc struct {
		Global struct {
			Version string `json:"version"`
		} `json:"global"`
	}
	if json.Unmarshal(state, &doc) != nil {
		return ""
	}
	return doc.Global.Version
}
