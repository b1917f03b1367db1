package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
	"github.com/synapse-p2p/synapse-p2p/internal/confjson"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// ConfigFile is the name of the config file inside a data directory.
const ConfigFile = "config.json"

// ErrNotInitialised is returned when a data directory has no identity or
// config: `synapse-p2p init` has not been run for it.
var ErrNotInitialised = errors.New("data directory is not initialised")

// Config is a node's whole configuration: one JSON file
// <data>/config.json, overridden by SYNAPSE_* environment variables, which
// the command line overrides in turn.
type Config struct {
	// DataDir holds identity, config, datastore and upgrade state. It is not
	// stored in the file (the file lives in it).
	DataDir string `json:"-"`
	// Genesis is the genesis file, relative to DataDir unless absolute.
	Genesis string `json:"genesis"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// P2P configures the libp2p host.
	P2P p2p.Config `json:"p2p"`
	// API configures the REST API: address, token, allowed Host names,
	// body and upload caps, dry-run concurrency (see httpapi.Config and
	// docs/openapi.yaml).
	API httpapi.Config `json:"api"`
	// Upgrade sets the executor's sandbox limits and caches (its data_dir
	// is ignored: the executor always lives in <DataDir>/upgrades).
	Upgrade upgrade.Config `json:"upgrade"`
	// Bitswap tunes package distribution (provider search, reprovide, cap).
	Bitswap bitswap.Config `json:"bitswap"`
	// Raft tunes the validators' raft and their duties (timeouts, stall
	// timeout before a void, leader grace and ban). Its dir and
	// network_id are set by the node (<data>/raft, the genesis' network).
	Raft raftnet.Config `json:"raft"`
	// Gossip tunes op-set sync (interval, timeout, inbound sessions) and
	// the orphan pool.
	Gossip gossip.Config `json:"gossip"`
	// PrefetchSpread spreads the start of package prefetches over this
	// window: a node that is not a validator waits a fixed offset in
	// [0, prefetch_spread) derived from its peer ID before it prefetches an
	// approved package, so a network does not ask the proposer all at once
	// and later nodes fetch from earlier ones. 0 prefetches at once. The executor never waits: an
	// entry that becomes final is fetched then.
	PrefetchSpread time.Duration `json:"prefetch_spread"`
	// DryRunOnApproval: when a proposal passes, the node dry-runs its
	// package on the current state (after its prefetch offset; fetching
	// an http(s) package then), and the executor commits that outcome when
	// the entry becomes final on the same state instead of running the
	// package again. Running a package is deterministic, so the outcome is
	// the same; the sandbox runs of a network spread over the prefetch
	// window instead of all starting when the entry becomes final.
	DryRunOnApproval bool `json:"dry_run_on_approval"`
	// Repair (the daemon's --repair flag, never stored) drops datastore
	// records that cannot be loaded instead of refusing to start; valid
	// ops among them are fetched again from peers.
	Repair bool `json:"-"`
}

// DefaultConfig is the configuration of a node that was initialised with no
// options: data in dataDir, genesis.json beside the config.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:  dataDir,
		Genesis:  "genesis.json",
		LogLevel: "info",
		P2P:      p2p.DefaultConfig(),
		API:      httpapi.DefaultConfig(),
		Upgrade:  upgrade.DefaultConfig(),
		Bitswap:  bitswap.DefaultConfig(),
		Raft:     raftnet.DefaultConfig(),
		Gossip:   gossip.DefaultConfig(),

		PrefetchSpread:   defaultPrefetchSpread,
		DryRunOnApproval: true,
	}
}

// defaultPrefetchSpread: prefetches of a package start over 3 s.
const defaultPrefetchSpread = 3 * time.Second

// GenesisPath resolves Genesis against DataDir.
func (c Config) GenesisPath() string {
	if filepath.IsAbs(c.Genesis) {
		return c.Genesis
	}
	return filepath.Join(c.DataDir, c.Genesis)
}

// ErrInvalidConfig wraps the errors of the node's own keys of config.json
// (each section wraps its package's ErrInvalidConfig).
var ErrInvalidConfig = errors.New("node: invalid config")

// Validate checks every section.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: no data directory", ErrInvalidConfig)
	}
	if c.Genesis == "" {
		return fmt.Errorf("%w: genesis is empty", ErrInvalidConfig)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.PrefetchSpread < 0 {
		return fmt.Errorf("%w: prefetch_spread %s is negative", ErrInvalidConfig, c.PrefetchSpread)
	}
	if err := c.P2P.Validate(); err != nil {
		return err
	}
	u := c.Upgrade
	u.DataDir = c.DataDir
	if err := u.Validate(); err != nil {
		return err
	}
	if err := c.Bitswap.Validate(); err != nil {
		return err
	}
	r := c.Raft
	r.Dir, r.NetworkID = filepath.Join(c.DataDir, "raft"), "set-by-node"
	if err := r.Validate(); err != nil {
		return err
	}
	if err := c.Gossip.Validate(); err != nil {
		return err
	}
	return c.API.Validate()
}

// LoadConfig builds the configuration of the node in dataDir: defaults,
// then <dataDir>/config.json (unknown fields are an error), then the
// environment through getenv (nil means os.Getenv). Command-line flags are
// applied by the caller afterwards. A missing data directory or config file
// is ErrNotInitialised.
func LoadConfig(dataDir string, getenv func(string) string) (Config, error) {
	cfg, _, err := LoadConfigSources(dataDir, getenv)
	return cfg, err
}

// LoadConfigSources is LoadConfig that also tells which keys the file and
// the environment set (for `synapse-p2p config show`).
func LoadConfigSources(dataDir string, getenv func(string) string) (Config, ConfigSources, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := DefaultConfig(dataDir)
	b, err := os.ReadFile(filepath.Join(dataDir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, fmt.Errorf("%w: %s (run: synapse-p2p init --data %s)", ErrNotInitialised, dataDir, dataDir)
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("config: %w", err)
	}
	if cfg, err = decodeConfig(dataDir, b); err != nil {
		return cfg, nil, fmt.Errorf("config: %s: %w", filepath.Join(dataDir, ConfigFile), err)
	}
	src := ConfigSources{}
	if b, err = migrateConfig(b); err == nil {
		err = src.setKeys(b, SourceFile)
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("config: %s: %w", filepath.Join(dataDir, ConfigFile), err)
	}
	keys, err := cfg.applyEnv(getenv)
	if err != nil {
		return cfg, nil, err
	}
	for _, k := range keys {
		src[k] = SourceEnv
	}
	return cfg, src, nil
}

// decodeConfig reads the bytes of a config.json over the defaults of a node
// in dataDir (unknown fields and anything after the object are errors). It
// is LoadConfig without the file and the environment.
func decodeConfig(dataDir string, b []byte) (Config, error) {
	cfg := DefaultConfig(dataDir)
	if err := cfg.UnmarshalJSON(b); err != nil {
		return cfg, err
	}
	cfg.DataDir = dataDir
	return cfg, nil
}

// fileConfig is Config without its JSON methods.
type fileConfig Config

// MarshalJSON writes the config as config.json holds it: durations as
// text ("30s", internal/confjson), enums as their names.
func (c Config) MarshalJSON() ([]byte, error) { return confjson.Marshal(fileConfig(c)) }

// UnmarshalJSON reads a config.json over c: absent keys keep their value,
// unknown keys and data after the object are errors, and durations are
// text or, as in files written before, integer nanoseconds (and the p2p
// section's old *_seconds keys, integer seconds).
func (c *Config) UnmarshalJSON(b []byte) error {
	b, err := migrateConfig(b)
	if err != nil {
		return err
	}
	return confjson.Unmarshal(b, (*fileConfig)(c))
}

// EnvPrefix starts every environment variable the node reads.
const EnvPrefix = "SYNAPSE_"

// ApplyEnv overrides fields from SYNAPSE_* variables: LISTEN and BOOTSTRAP
// (comma-separated multiaddrs), API (address), API_TOKEN, API_ALLOWED_HOSTS
// (comma-separated Host names the API answers to besides loopback and its
// bind address; replaces api.allowed_hosts), MDNS (bool), DHT_MODE,
// GENESIS, LOG_LEVEL, and for NAT traversal (docs/nat.md) ANNOUNCE,
// NO_ANNOUNCE and STATIC_RELAYS (comma-separated multiaddrs; "none"
// empties the list), REACHABILITY (auto, public, private), and AUTONAT,
// RELAY_SERVICE, RELAY_CLIENT, HOLE_PUNCHING (bool).
func (c *Config) ApplyEnv(getenv func(string) string) error {
	_, err := c.applyEnv(getenv)
	return err
}

// applyEnv is ApplyEnv; it returns the config.json keys it set.
func (c *Config) applyEnv(getenv func(string) string) ([]string, error) {
	var keys []string
	for _, e := range envVars {
		v := getenv(EnvPrefix + e.name)
		if v == "" {
			continue
		}
		if err := e.set(c, v); err != nil {
			return nil, fmt.Errorf("config: %s%s=%q: %w", EnvPrefix, e.name, v, err)
		}
		keys = append(keys, e.key)
	}
	return keys, nil
}

// envVar is one SYNAPSE_* variable: its name after the prefix, the
// config.json key it overrides and how.
type envVar struct {
	name, key string
	set       func(c *Config, v string) error
}

var envVars = []envVar{
	{"LISTEN", "p2p.listen_addrs", envList(func(c *Config) *[]string { return &c.P2P.ListenAddrs }, false)},
	{"BOOTSTRAP", "p2p.bootstrap", envList(func(c *Config) *[]string { return &c.P2P.Bootstrap }, false)},
	{"ANNOUNCE", "p2p.announce", envList(func(c *Config) *[]string { return &c.P2P.Announce }, true)},
	{"NO_ANNOUNCE", "p2p.no_announce", envList(func(c *Config) *[]string { return &c.P2P.NoAnnounce }, true)},
	{"STATIC_RELAYS", "p2p.relay_client.static_relays", envList(func(c *Config) *[]string { return &c.P2P.RelayClient.StaticRelays }, true)},
	{"REACHABILITY", "p2p.reachability", envString(func(c *Config) *string { return &c.P2P.Reachability })},
	{"DHT_MODE", "p2p.dht_mode", envString(func(c *Config) *string { return &c.P2P.DHTMode })},
	{"AUTONAT", "p2p.autonat", envBool(func(c *Config) *bool { return &c.P2P.AutoNAT })},
	{"RELAY_SERVICE", "p2p.relay_service.enabled", envBool(func(c *Config) *bool { return &c.P2P.RelayService.Enabled })},
	{"RELAY_CLIENT", "p2p.relay_client.enabled", envBool(func(c *Config) *bool { return &c.P2P.RelayClient.Enabled })},
	{"HOLE_PUNCHING", "p2p.hole_punching", envBool(func(c *Config) *bool { return &c.P2P.HolePunching })},
	{"MDNS", "p2p.mdns", envBool(func(c *Config) *bool { return &c.P2P.MDNS })},
	{"API", "api.addr", envString(func(c *Config) *string { return &c.API.Addr })},
	{"API_TOKEN", "api.token", envString(func(c *Config) *string { return &c.API.Token })},
	{"API_ALLOWED_HOSTS", "api.allowed_hosts", envList(func(c *Config) *[]string { return &c.API.AllowedHosts }, false)},
	{"GENESIS", "genesis", envString(func(c *Config) *string { return &c.Genesis })},
	{"LOG_LEVEL", "log_level", envString(func(c *Config) *string { return &c.LogLevel })},
}

// envList sets a comma-separated list; with none, "none" empties it.
func envList(field func(*Config) *[]string, none bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		if none && v == "none" {
			*field(c) = nil
		} else {
			*field(c) = splitList(v)
		}
		return nil
	}
}

func envString(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func envBool(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*field(c) = b
		return nil
	}
}

// Write stores the configuration as <DataDir>/config.json.
func (c Config) Write() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(c.DataDir, ConfigFile), append(b, '\n'), 0o644)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
