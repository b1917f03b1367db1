// Package upgrade is the executor of synapse-p2p: it fetches and verifies
// upgrade packages (http, https, ipfs through an injected function),
// runs them in a wazero sandbox in a child process of the node's binary,
// validates their output and commits the new network state, version and
// history atomically, with backups to roll back to.
//
// It knows nothing of the network: node/ feeds it final execution-log
// entries in seq order (Execute) and reports the results.
package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Isolation selects where guest code runs.
type Isolation int

const (
	// IsolationProcess runs each call in a child process of this binary
	// (MaybeRunSandboxChild), killed at the deadline. The default.
	IsolationProcess Isolation = iota
	// IsolationInProcess runs guest code in the node's process and stops it
	// with wazero's WithCloseOnContextDone (slower guest code, see
	// docs/sandbox.md).
	IsolationInProcess
)

func (i Isolation) String() string {
	switch i {
	case IsolationProcess:
		return "process"
	case IsolationInProcess:
		return "in-process"
	}
	return fmt.Sprintf("Isolation(%d)", int(i))
}

// MarshalText writes the isolation's name ("process", "in-process").
func (i Isolation) MarshalText() ([]byte, error) {
	if i != IsolationProcess && i != IsolationInProcess {
		return nil, fmt.Errorf("upgrade: unknown isolation %d", int(i))
	}
	return []byte(i.String()), nil
}

// UnmarshalJSON reads an isolation's name, or the number config files held
// before (0 process, 1 in-process).
func (i *Isolation) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		var n int
		if json.Unmarshal(b, &n) != nil {
			return fmt.Errorf("upgrade: isolation %s: want \"process\" or \"in-process\"", b)
		}
		*i = Isolation(n) // Validate rejects unknown numbers
		return nil
	}
	for _, v := range []Isolation{IsolationProcess, IsolationInProcess} {
		if name == v.String() {
			*i = v
			return nil
		}
	}
	return fmt.Errorf("upgrade: isolation %q: want \"process\" or \"in-process\"", name)
}

// Config configures a Manager.
type Config struct {
	// DataDir is the node data dir; files live in <DataDir>/upgrades/.
	// The node sets it (omitted from config.json, ignored there).
	DataDir string `json:"data_dir,omitempty"`
	// The limits that decide an upgrade's outcome come from the network
	// state (global.governance.limits: max_package_bytes, memory_pages,
	// max_output_bytes, fuel; see genesis.Limits), so every node decides
	// alike. The three caps below are only this node's safety caps: when
	// a network limit exceeds one, Execute and Test fail transiently
	// (errTransient and errLocalCap, naming the field to raise) and never
	// commit an outcome the rest of the network would not reproduce.

	// MaxPackageBytes caps a package download (default 64 MiB, the
	// network's default max_package_bytes). A package needs
	// package_size, or the network's max_package_bytes when the proposal
	// has no size.
	MaxPackageBytes int64 `json:"max_package_bytes"`
	// MemoryLimitBytes caps guest memory (default 256 MiB, the network's
	// default memory_pages); it must be at least memory_pages × 64 KiB.
	// The sandbox process's data rlimit is sized from the network's limit
	// plus runtime headroom (docs/sandbox.md).
	MemoryLimitBytes uint64 `json:"memory_limit_bytes"`
	// Timeout is the wall-clock safety net of one sandbox call, counted
	// from the end of compiling (default 5 min, about 10x what the default
	// fuel takes on a current core). The network's fuel
	// budget bounds the work; this only stops a call that a slow or
	// overloaded machine cannot finish, and its expiry is transient (the
	// entry is retried), never a committed failure. Compiling has its own
	// net of 10 × Timeout, counted once the compile lock is held.
	Timeout time.Duration `json:"timeout"`
	// MaxOutputBytes caps the new state a package returns (default
	// 64 MiB, the network's default max_output_bytes); it must be at least
	// the network's max_output_bytes.
	MaxOutputBytes int64 `json:"max_output_bytes"`
	// AllowFileURLs enables file:// package URLs (dev only).
	AllowFileURLs bool `json:"allow_file_urls"`
	// Isolation selects where guest code runs (default IsolationProcess).
	Isolation Isolation `json:"isolation"`
	// CompilationCacheDir holds compiled modules (default
	// <DataDir>/upgrades/wasm-cache). Entries are keyed by the module's
	// hash and the wazero version, so several nodes may share one.
	CompilationCacheDir string `json:"compilation_cache_dir,omitempty"`
	// DownloadBaseTimeout is the fixed part of the download deadline
	// (default 30 s). The deadline of one download from one source is
	// DownloadBaseTimeout + size / DownloadMinRate, where size is
	// package_size (MaxPackageBytes when unknown), so a server that
	// trickles bytes cannot hold the executor. With the defaults a 1 MiB
	// package has 46 s and a 64 MiB one about 17.5 min.
	DownloadBaseTimeout time.Duration `json:"download_base_timeout"`
	// DownloadMinRate is the slowest transfer, in bytes per second, the
	// deadline allows for (default 64 KiB/s, at least 1 KiB/s).
	DownloadMinRate int64 `json:"download_min_rate"`
	// DownloadIdleTimeout fails a download when no byte arrives for this
	// long, waiting for the response included (default 30 s).
	DownloadIdleTimeout time.Duration `json:"download_idle_timeout"`
}

// Defaults: the caps equal the network's default limits.
const (
	defaultMaxPackageBytes  = genesis.DefaultMaxPackageBytes
	defaultMemoryLimitBytes = genesis.DefaultMemoryPages * pageSize
	defaultTimeout          = 5 * time.Minute
	defaultMaxOutputBytes   = genesis.DefaultMaxOutputBytes

	defaultDownloadBaseTimeout = 30 * time.Second
	defaultDownloadMinRate     = 64 << 10 // bytes per second
	defaultDownloadIdleTimeout = 30 * time.Second
	// minDownloadMinRate is the lowest DownloadMinRate Validate accepts.
	minDownloadMinRate = 1 << 10
)

// DefaultConfig returns a Config with every default set (DataDir empty).
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.MaxPackageBytes == 0 {
		c.MaxPackageBytes = defaultMaxPackageBytes
	}
	if c.MemoryLimitBytes == 0 {
		c.MemoryLimitBytes = defaultMemoryLimitBytes
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = defaultMaxOutputBytes
	}
	if c.DownloadBaseTimeout == 0 {
		c.DownloadBaseTimeout = defaultDownloadBaseTimeout
	}
	if c.DownloadMinRate == 0 {
		c.DownloadMinRate = defaultDownloadMinRate
	}
	if c.DownloadIdleTimeout == 0 {
		c.DownloadIdleTimeout = defaultDownloadIdleTimeout
	}
	if c.CompilationCacheDir == "" && c.DataDir != "" {
		c.CompilationCacheDir = filepath.Join(c.DataDir, "upgrades", wasmCache)
	}
	return c
}

// ErrInvalidConfig wraps every error of Config.Validate (and so of New for
// a bad Config); the message names the JSON key of the bad field.
var ErrInvalidConfig = errors.New("upgrade: invalid config")

// Validate checks a Config (zero values mean defaults). Errors wrap
// ErrInvalidConfig and name the field's JSON key.
func (c Config) Validate() error {
	bad := func(key, f string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(f, a...))
	}
	if c.DataDir == "" {
		return bad("data_dir", "is required")
	}
	for _, v := range []struct {
		key string
		neg bool
	}{
		{"max_package_bytes", c.MaxPackageBytes < 0},
		{"timeout", c.Timeout < 0},
		{"max_output_bytes", c.MaxOutputBytes < 0},
		{"download_base_timeout", c.DownloadBaseTimeout < 0},
		{"download_min_rate", c.DownloadMinRate < 0},
		{"download_idle_timeout", c.DownloadIdleTimeout < 0},
	} {
		if v.neg {
			return bad(v.key, "must not be negative")
		}
	}
	switch {
	case c.DownloadMinRate != 0 && c.DownloadMinRate < minDownloadMinRate:
		return bad("download_min_rate", "%d B/s is below %d B/s (the deadline of a large package would be days)",
			c.DownloadMinRate, minDownloadMinRate)
	case c.MemoryLimitBytes != 0 && c.MemoryLimitBytes < pageSize:
		return bad("memory_limit_bytes", "%d is below one wasm page", c.MemoryLimitBytes)
	case c.MemoryLimitBytes > 4<<30:
		return bad("memory_limit_bytes", "%d exceeds 4 GiB (wasm32)", c.MemoryLimitBytes)
	case c.Isolation != IsolationProcess && c.Isolation != IsolationInProcess:
		return bad("isolation", "unknown isolation %d", c.Isolation)
	}
	return nil
}

// Deps are what node/ injects.
type Deps struct {
	// IPFSFetch fetches ipfs:// packages; nil means ipfs is not configured.
	IPFSFetch IPFSFetchFunc
	// OnVerified, if set, is called once each time a package is downloaded
	// (from any source), verified and stored in the package cache, with its
	// hash (64 lowercase hex digits) and the path of the cached file, so
	// node/ can import it into its content store and serve it to peers. It
	// runs synchronously inside Execute or Test, before the package runs:
	// hand long work to a goroutine. The file stays until the cache is
	// cleared; it is not called for a package already in the cache.
	OnVerified func(ctx context.Context, sha256hex, path string)
	// Logger receives the executor's logs (it adds component=upgrade);
	// nil discards them, as in every other component.
	Logger *slog.Logger
	// Now stamps history entries (default time.Now). History is local, not
	// replicated state.
	Now func() time.Time
}

// Manager is the executor of one node.
type Manager struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	dir   string
	store *store
	fetch *fetcher

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	execMu sync.Mutex // serialises InitState, Execute, Rollback, Resume
	runs   runMemo    // outcomes of runs that Execute can reuse
	closer lifecycle.Once

	mu     sync.Mutex
	snap   *snapshot // nil until InitState
	closed bool
	wasmOK bool
}

// New opens the executor's files under cfg.DataDir/upgrades, finishing a
// commit a crash interrupted.
func New(ctx context.Context, cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Isolation == IsolationProcess && !ProcessIsolationAvailable() {
		return nil, errNoChildHook
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	dir := filepath.Join(cfg.DataDir, "upgrades")
	for _, d := range []string{dir, filepath.Join(dir, cacheDir), cfg.CompilationCacheDir, filepath.Join(dir, versionsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("upgrade: %w", err)
		}
	}
	st := &store{dir: dir}
	snap, err := st.load()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.RemoveTemps(filepath.Join(dir, cacheDir)); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	log := deps.Logger.With("component", "upgrade")
	m := &Manager{
		cfg: cfg, deps: deps, log: log, dir: dir, store: st, ctx: mctx, cancel: cancel, snap: snap,
		fetch: newFetcher(filepath.Join(dir, cacheDir), cfg, deps, log),
	}
	m.wasmOK = m.probeWasm(ctx)
	return m, nil
}

// probeWasm checks that a sandbox can be set up on this machine.
func (m *Manager) probeWasm(ctx context.Context) bool {
	if m.cfg.Isolation == IsolationProcess {
		if _, err := os.Executable(); err != nil {
			m.log.Warn("wasm sandbox unavailable", "err", err)
			return false
		}
	}
	e, err := newEngine(ctx, "", limits{MemoryLimitBytes: m.cfg.MemoryLimitBytes}, true)
	if err != nil {
		m.log.Warn("wasm sandbox unavailable", "err", err)
		return false
	}
	e.close(ctx)
	return true
}

// Close stops running calls (they fail as transient) and waits for them
// until ctx is done. Every call returns the first call's result.
func (m *Manager) Close(ctx context.Context) error {
	return m.closer.Do(func() error {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		return lifecycle.Wait(ctx, "upgrade calls", m.wg.Wait)
	})
}

// begin registers an operation; the returned context is also cancelled by
// Close.
func (m *Manager) begin(ctx context.Context) (context.Context, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, fmt.Errorf("%w: %w", errTransient, errClosed)
	}
	m.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.ctx, cancel)
	return ctx, func() { stop(); cancel(); m.wg.Done() }, nil
}

func (m *Manager) current() *snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap
}

// commit stores next and makes it current.
func (m *Manager) commit(next *snapshot) error {
	committed, err := m.store.commit(next)
	if committed {
		m.mu.Lock()
		m.snap = next
		m.mu.Unlock()
		m.runs.retain(next.StateSHA256)
		if err != nil {
			// The journal is durable: the commit stands and the next open
			// (or commit) finishes writing the files.
			m.log.Error("commit journaled but files not updated; will finish on restart", "err", err)
		}
		return nil
	}
	return transient("commit: %v", err)
}

// InitState installs the genesis state on first start; it is a no-op (nil)
// when a state exists.
func (m *Manager) InitState(version string, state []byte) error {
	m.execMu.Lock()
	defer m.execMu.Unlock()
	if m.current() != nil {
		return nil
	}
	if !genesis.ValidVersion(version) {
		return fmt.Errorf("upgrade: init: version %q is not a semantic version", version)
	}
	canon, sum, err := canonicalState(state)
	if err != nil {
		return fmt.Errorf("upgrade: init: state: %w", err)
	}
	if sv := stateVersion(canon); sv != version {
		return fmt.Errorf("upgrade: init: state's global.version is %q, want %q", sv, version)
	}
	if _, err := genesis.RulesFromState(canon); err != nil {
		return fmt.Errorf("upgrade: init: %w", err)
	}
	return m.commit(&snapshot{Version: version, State: canon, StateSHA256: sum, History: []HistoryEntry{}})
}

// LastExecutedSeq is the seq of the last executed (or failed) entry; 0
// before the first.
func (m *Manager) LastExecutedSeq() uint64 {
	if s := m.current(); s != nil {
		return s.LastSeq
	}
	return 0
}

// State returns the current network state (canonical JSON), its version
// and hash; empty before InitState.
func (m *Manager) State() (version string, state []byte, sha256hex string) {
	s := m.current()
	if s == nil {
		return "", nil, ""
	}
	return s.Version, append([]byte(nil), s.State...), s.StateSHA256
}

// History lists every attempt, rollback and resume, oldest first.
func (m *Manager) History() []HistoryEntry {
	s := m.current()
	if s == nil {
		return []HistoryEntry{}
	}
	return append([]HistoryEntry{}, s.History...)
}

// Status summarises the executor.
type Status struct {
	CurrentVersion  string        `json:"current_version"`
	TotalUpgrades   int           `json:"total_upgrades"` // successful upgrades
	LastExecutedSeq uint64        `json:"last_executed_seq"`
	Paused          bool          `json:"paused"`
	PausedReason    string        `json:"paused_reason,omitempty"`
	WasmAvailable   bool          `json:"wasm_available"`
	IPFSAvailable   bool          `json:"ipfs_available"`
	LastUpgrade     *HistoryEntry `json:"last_upgrade,omitempty"` // last upgrade attempt
	StateSHA256     string        `json:"state_sha256"`
}

// Status returns the executor's status.
func (m *Manager) Status() Status {
	st := Status{WasmAvailable: m.wasmOK, IPFSAvailable: m.deps.IPFSFetch != nil}
	s := m.current()
	if s == nil {
		return st
	}
	st.CurrentVersion, st.LastExecutedSeq, st.StateSHA256 = s.Version, s.LastSeq, s.StateSHA256
	st.Paused, st.PausedReason = s.Paused, s.PausedReason
	for i := range s.History {
		h := s.History[i]
		if h.Event == EventUpgrade {
			if h.Success {
				st.TotalUpgrades++
			}
			st.LastUpgrade = &h
		}
	}
	return st
}
