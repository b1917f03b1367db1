package node_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
	"github.com/synapse-p2p/synapse-p2p/raftnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

func writeConfigFile(t *testing.T, dir, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, node.ConfigFile), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func noEnv(string) string { return "" }

// A config written now has every duration as text, enums as names, every
// section (gossip included) and not the keys the node sets; it loads back
// to the same config.
func TestConfigRoundTrip(t *testing.T) {
	c := node.DefaultConfig(t.TempDir())
	c.API.AllowedHosts = []string{"node.example", "[fd00::5]:8000"}
	c.API.DryRunQueueTimeout = 1500 * time.Millisecond
	c.Upgrade.Isolation = upgrade.IsolationInProcess
	c.Gossip.SyncInterval = 90 * time.Second
	c.Raft.BanDuration = time.Hour
	if err := c.Write(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, node.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"dry_run_queue_timeout": "1.5s"`, `"timeout": "5m"`, `"download_idle_timeout": "30s"`,
		`"isolation": "in-process"`, `"reprovide_interval": "12h"`, `"provider_search_delay": "50ms"`,
		`"commit_timeout": "20ms"`, `"ban_duration": "1h"`, `"gossip": {`, `"sync_interval": "1m30s"`,
		`"orphan_ttl": "10m"`, `"allowed_hosts": [`, `"discovery_interval": "30s"`, `"reservation_ttl": "1h"`,
		`"connection_duration": "2m"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config.json lacks %s", want)
		}
	}
	for _, unwanted := range []string{`"data_dir"`, `"dir"`, `_seconds"`, `"network_id"`, `"event_buffer"`, `000000000`} {
		if strings.Contains(string(b), unwanted) {
			t.Errorf("config.json holds %s:\n%s", unwanted, b)
		}
	}
	back, err := node.LoadConfig(c.DataDir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, c)
	}
}

// A config.json written before durations were text (integer nanoseconds,
// isolation a number, the node-set keys present and empty) still loads, to
// the same values, and is written back in the new form.
func TestConfigLoadsOldFormat(t *testing.T) {
	old, err := os.ReadFile("testdata/config-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeConfigFile(t, dir, string(old))
	got, err := node.LoadConfig(dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	// Every value of the old file, read the old way, is the value loaded.
	var oldDoc, newDoc any
	if err := json.Unmarshal(old, &oldDoc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &newDoc); err != nil {
		t.Fatal(err)
	}
	sameValues(t, "", oldDoc, newDoc)
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	writeConfigFile(t, dir, `{"upgrade":{"isolation":1,"timeout":60000000000},"raft":{"stall_timeout":45000000000,"dir":"","network_id":""},"api":{"dry_run_queue_timeout":"1m"}}`)
	if got, err = node.LoadConfig(dir, noEnv); err != nil {
		t.Fatal(err)
	}
	if got.Upgrade.Isolation != upgrade.IsolationInProcess || got.Upgrade.Timeout != time.Minute ||
		got.Raft.StallTimeout != 45*time.Second || got.API.DryRunQueueTimeout != time.Minute {
		t.Fatalf("old values: %+v %+v", got.Upgrade, got.Raft)
	}
	if err := got.Write(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, node.ConfigFile))
	if !strings.Contains(string(b), `"stall_timeout": "45s"`) || !strings.Contains(string(b), `"isolation": "in-process"`) {
		t.Fatalf("rewritten config keeps the old form:\n%s", b)
	}
}

// The p2p keys that were integer seconds load under their new names, and
// config show attributes them to the file.
func TestConfigLegacySecondsKeys(t *testing.T) {
	dir := t.TempDir()
	writeConfigFile(t, dir, `{"p2p":{"discovery_seconds":45,"relay_service":{"connection_duration_seconds":0,"connection_data_bytes":0,"reservation_ttl_seconds":600}}}`)
	c, src, err := node.LoadConfigSources(dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	rs := c.P2P.RelayService
	if c.P2P.DiscoveryInterval != 45*time.Second || rs.ConnectionDuration != 0 || rs.ReservationTTL != 10*time.Minute || rs.MaxCircuits != 16 {
		t.Fatalf("p2p %+v", c.P2P)
	}
	for _, k := range []string{"p2p.discovery_interval", "p2p.relay_service.connection_duration", "p2p.relay_service.reservation_ttl"} {
		if src[k] != node.SourceFile {
			t.Errorf("%s: source %q", k, src[k])
		}
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"both names", `{"p2p":{"discovery_seconds":45,"discovery_interval":"45s"}}`, "discovery_seconds and discovery_interval"},
		{"text seconds", `{"p2p":{"discovery_seconds":"45s"}}`, `p2p: discovery_seconds "45s": want whole seconds`},
		{"nested", `{"p2p":{"relay_service":{"reservation_ttl_seconds":-1}}}`, "p2p.relay_service: reservation_ttl_seconds -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfigFile(t, dir, tc.doc)
			if _, err := node.LoadConfig(dir, noEnv); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, doc, want string }{
		{"bad duration", `{"raft":{"stall_timeout":"30 seconds"}}`, `duration "30 seconds"`},
		{"duration as bool", `{"gossip":{"sync_interval":true}}`, "duration true"},
		{"unknown isolation", `{"upgrade":{"isolation":"container"}}`, `isolation "container"`},
		{"isolation as bool", `{"upgrade":{"isolation":false}}`, "isolation false"},
		{"unknown gossip key", `{"gossip":{"event_buffer":8}}`, `unknown field "event_buffer"`},
		{"unknown bitswap key", `{"bitswap":{"max_fetch_byte":1}}`, `unknown field "max_fetch_byte"`},
		{"unknown api key", `{"api":{"allowed_host":["x"]}}`, `unknown field "allowed_host"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfigFile(t, dir, tc.doc)
			_, err := node.LoadConfig(dir, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Every section's Validate wraps its package's ErrInvalidConfig and names
// the config.json key at fault.
func TestConfigValidateNamesKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mutate   func(*node.Config)
		sentinel error
		key      string
	}{
		{"log level", func(c *node.Config) { c.LogLevel = "loud" }, node.ErrInvalidConfig, "log_level"},
		{"genesis", func(c *node.Config) { c.Genesis = "" }, node.ErrInvalidConfig, "genesis"},
		{"p2p listen", func(c *node.Config) { c.P2P.ListenAddrs = nil }, p2p.ErrInvalidConfig, "listen_addrs"},
		{"p2p watermarks", func(c *node.Config) { c.P2P.ConnHigh = 1 }, p2p.ErrInvalidConfig, "conn_high"},
		{"p2p dht", func(c *node.Config) { c.P2P.DHTMode = "x" }, p2p.ErrInvalidConfig, "dht_mode"},
		{"p2p discovery", func(c *node.Config) { c.P2P.DiscoveryInterval = 0 }, p2p.ErrInvalidConfig, "discovery_interval"},
		{"p2p relay ttl", func(c *node.Config) { c.P2P.RelayService.ReservationTTL = 0 }, p2p.ErrInvalidConfig, "reservation_ttl"},
		{"api queue", func(c *node.Config) { c.API.DryRunQueueTimeout = 0 }, httpapi.ErrInvalidConfig, "dry_run_queue_timeout"},
		{"bitswap", func(c *node.Config) { c.Bitswap.ProviderSearchDelay = 0 }, bitswap.ErrInvalidConfig, "provider_search_delay"},
		{"raft lease", func(c *node.Config) { c.Raft.LeaderLeaseTimeout = time.Hour }, raftnet.ErrInvalidConfig, "leader_lease_timeout"},
		{"raft retry", func(c *node.Config) { c.Raft.RetryMin = 0 }, raftnet.ErrInvalidConfig, "retry_min"},
		{"raft snapshots", func(c *node.Config) { c.Raft.SnapshotInterval = 0 }, raftnet.ErrInvalidConfig, "snapshot_interval"},
		{"gossip interval", func(c *node.Config) { c.Gossip.SyncInterval = 0 }, gossip.ErrInvalidConfig, "sync_interval"},
		{"gossip sessions", func(c *node.Config) { c.Gossip.MaxNonMemberSyncSessions = 99 }, gossip.ErrInvalidConfig, "max_non_member_sync_sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := node.DefaultConfig(t.TempDir())
			tc.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("err = %v, want %v naming %s", err, tc.sentinel, tc.key)
			}
		})
	}
}

// LoadConfigSources tells file keys from env keys and defaults; ShowConfig
// prints every key with its source and hides the API token.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	writeConfigFile(t, dir, `{"log_level":"warn","gossip":{"sync_interval":"1m"},"p2p":{"relay_service":{"max_circuits":4}},"api":{"token":"hunter2"}}`)
	env := map[string]string{"SYNAPSE_API": "127.0.0.1:9009", "SYNAPSE_LOG_LEVEL": "debug", "SYNAPSE_MDNS": "false"}
	c, src, err := node.LoadConfigSources(dir, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	src["api.token"] = node.SourceFlag // as the CLI records a flag
	b, err := node.ShowConfig(c, src)
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Config  map[string]json.RawMessage `json:"config"`
		Sources map[string]node.Source     `json:"sources"`
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for key, want := range map[string]node.Source{
		"log_level":                      node.SourceEnv, // file, then env
		"gossip.sync_interval":           node.SourceFile,
		"gossip.sync_timeout":            node.SourceDefault,
		"p2p.relay_service.max_circuits": node.SourceFile,
		"p2p.relay_service.enabled":      node.SourceDefault,
		"p2p.mdns":                       node.SourceEnv, // env equal to the default still counts
		"api.addr":                       node.SourceEnv,
		"api.token":                      node.SourceFlag,
		"raft.stall_timeout":             node.SourceDefault,
		"upgrade.isolation":              node.SourceDefault,
		"p2p.listen_addrs":               node.SourceDefault,
	} {
		if got := shown.Sources[key]; got != want {
			t.Errorf("%s: source %q, want %q", key, got, want)
		}
	}
	var written map[string]json.RawMessage
	full, _ := json.Marshal(shown.Config)
	if err := json.Unmarshal(full, &written); err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{"genesis", "log_level", "p2p", "api", "upgrade", "bitswap", "raft", "gossip"} {
		if written[sec] == nil {
			t.Errorf("config lacks %s: %s", sec, full)
		}
	}
	if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), `"token": "(redacted)"`) {
		t.Fatalf("API token not redacted:\n%s", b)
	}
	// Every value of the shown config has a source (there are about 70).
	if got := len(shown.Sources); got < 60 {
		t.Fatalf("only %d sources", got)
	}
}

// renamedSeconds are the p2p keys that were integer seconds, and their
// names now.
var renamedSeconds = map[string]string{
	"discovery_seconds":           "discovery_interval",
	"connection_duration_seconds": "connection_duration",
	"reservation_ttl_seconds":     "reservation_ttl",
}

// sameValues checks that every value of the old-form document was is the
// value of the new-form document is at the same key: integer nanoseconds
// or long duration text against duration text, isolation numbers against
// names. Keys the node
// sets and no longer writes (empty in was) are skipped.
func sameValues(t *testing.T, key string, was, is any) {
	t.Helper()
	if m, ok := was.(map[string]any); ok {
		im, _ := is.(map[string]any)
		for k, v := range m {
			if v == "" {
				continue // raft.dir, raft.network_id, upgrade.data_dir
			}
			if nk, ok := renamedSeconds[k]; ok { // integer seconds then
				v, k = v.(float64)*1e9, nk
			}
			sameValues(t, strings.TrimPrefix(key+"."+k, "."), v, im[k])
		}
		return
	}
	if s, ok := is.(string); ok {
		if w, ok := was.(string); ok { // "12h0m0s" then, "12h" now
			dw, errw := time.ParseDuration(w)
			ds, errs := time.ParseDuration(s)
			if errw == nil && errs == nil && dw == ds {
				return
			}
		}
		if n, ok := was.(float64); ok {
			if d, err := time.ParseDuration(s); err == nil {
				is = float64(d)
			} else if key == "upgrade.isolation" {
				is = float64(map[string]int{"process": 0, "in-process": 1}[s])
			}
			if is != n {
				t.Errorf("%s: old %v, loaded %q", key, was, s)
			}
			return
		}
	}
	if !reflect.DeepEqual(was, is) {
		t.Errorf("%s: old %v, loaded %v", key, was, is)
	}
}
