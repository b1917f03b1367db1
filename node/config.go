package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
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
	// PrefetchSpread spreads the start of package prefetches over this
	// window (nanoseconds in JSON, like the raft section): a node that is not a
	// validator waits a fixed offset in [0, prefetch_spread) derived from
	// its peer ID before it prefetches an approved package, so a network
	// does not ask the proposer all at once and later nodes fetch from
	// earlier ones. 0 prefetches at once. The executor never waits: an
	// entry that becomes final is fetched then.
	PrefetchSpread time.Duration `json:"prefetch_spread"`
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

		PrefetchSpread: DefaultPrefetchSpread,
	}
}

// DefaultPrefetchSpread: prefetches of a package start over 3 s.
const DefaultPrefetchSpread = 3 * time.Second

// GenesisPath resolves Genesis against DataDir.
func (c Config) GenesisPath() string {
	if filepath.IsAbs(c.Genesis) {
		return c.Genesis
	}
	return filepath.Join(c.DataDir, c.Genesis)
}

// Validate checks every section.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("config: no data directory")
	}
	if c.Genesis == "" {
		return errors.New("config: no genesis file")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.PrefetchSpread < 0 {
		return fmt.Errorf("config: prefetch_spread %s is negative", c.PrefetchSpread)
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
	return c.API.Validate()
}

// LoadConfig builds the configuration of the node in dataDir: defaults,
// then <dataDir>/config.json (unknown fields are an error), then the
// environment through getenv (nil means os.Getenv). Command-line flags are
// applied by the caller afterwards. A missing data directory or config file
// is ErrNotInitialised.
func LoadConfig(dataDir string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := DefaultConfig(dataDir)
	b, err := os.ReadFile(filepath.Join(dataDir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("%w: %s (run: synapse-p2p init --data %s)", ErrNotInitialised, dataDir, dataDir)
	}
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if cfg, err = decodeConfig(dataDir, b); err != nil {
		return cfg, fmt.Errorf("config: %s: %w", filepath.Join(dataDir, ConfigFile), err)
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// decodeConfig reads the bytes of a config.json over the defaults of a node
// in dataDir (unknown fields and anything after the object are errors). It
// is LoadConfig without the file and the environment.
func decodeConfig(dataDir string, b []byte) (Config, error) {
	cfg := DefaultConfig(dataDir)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, err
	}
	// A second document (two configs pasted into one file) would be
	// ignored silently otherwise.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return cfg, errors.New("trailing data after the JSON object")
	}
	cfg.DataDir = dataDir
	return cfg, nil
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
	for _, l := range []struct {
		name string
		dst  *[]string
	}{
		{"ANNOUNCE", &c.P2P.Announce},
		{"NO_ANNOUNCE", &c.P2P.NoAnnounce},
		{"STATIC_RELAYS", &c.P2P.RelayClient.StaticRelays},
	} {
		if v := getenv(EnvPrefix + l.name); v == "none" {
			*l.dst = nil
		} else if v != "" {
			*l.dst = splitList(v)
		}
	}
	if v := getenv(EnvPrefix + "REACHABILITY"); v != "" {
		c.P2P.Reachability = v
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"AUTONAT", &c.P2P.AutoNAT},
		{"RELAY_SERVICE", &c.P2P.RelayService.Enabled},
		{"RELAY_CLIENT", &c.P2P.RelayClient.Enabled},
		{"HOLE_PUNCHING", &c.P2P.HolePunching},
		{"MDNS", &c.P2P.MDNS},
	} {
		if err := envBool(getenv, b.name, b.dst); err != nil {
			return err
		}
	}
	if v := getenv(EnvPrefix + "LISTEN"); v != "" {
		c.P2P.ListenAddrs = splitList(v)
	}
	if v := getenv(EnvPrefix + "BOOTSTRAP"); v != "" {
		c.P2P.Bootstrap = splitList(v)
	}
	if v := getenv(EnvPrefix + "API"); v != "" {
		c.API.Addr = v
	}
	if v := getenv(EnvPrefix + "API_TOKEN"); v != "" {
		c.API.Token = v
	}
	if v := getenv(EnvPrefix + "API_ALLOWED_HOSTS"); v != "" {
		c.API.AllowedHosts = splitList(v)
	}
	if v := getenv(EnvPrefix + "DHT_MODE"); v != "" {
		c.P2P.DHTMode = v
	}
	if v := getenv(EnvPrefix + "GENESIS"); v != "" {
		c.Genesis = v
	}
	if v := getenv(EnvPrefix + "LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	return nil
}

// envBool sets *dst from the boolean variable SYNAPSE_<name> when it is set.
func envBool(getenv func(string) string, name string, dst *bool) error {
	v := getenv(EnvPrefix + name)
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("config: %s%s=%q: want true or false", EnvPrefix, name, v)
	}
	*dst = b
	return nil
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
