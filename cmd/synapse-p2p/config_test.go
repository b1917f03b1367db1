package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// config show prints what the daemon would run with and where each value
// came from: flag over env over file over default.
func TestConfigShow(t *testing.T) {
	data := t.TempDir()
	if code, _, stderr := cli(t, "init", "--data", data); code != 0 {
		t.Fatal(stderr)
	}
	// A file with only some keys, so the rest are defaults.
	doc := `{"log_level":"warn","raft":{"stall_timeout":45000000000},"gossip":{"sync_interval":"30s"}}`
	if err := os.WriteFile(filepath.Join(data, "config.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNAPSE_API", "127.0.0.1:9009")
	t.Setenv("SYNAPSE_LOG_LEVEL", "error")
	code, out, stderr := cli(t, "config", "show", "--data", data, "--log-level", "debug", "--listen", "/ip4/127.0.0.1/tcp/0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var shown struct {
		Config struct {
			LogLevel string `json:"log_level"`
			API      struct {
				Addr string `json:"addr"`
			} `json:"api"`
			Raft struct {
				StallTimeout string `json:"stall_timeout"`
			} `json:"raft"`
		} `json:"config"`
		Sources map[string]string `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if shown.Config.LogLevel != "debug" || shown.Config.API.Addr != "127.0.0.1:9009" || shown.Config.Raft.StallTimeout != "45s" {
		t.Fatalf("effective config: %+v", shown.Config)
	}
	for key, want := range map[string]string{
		"log_level":            "flag",
		"p2p.listen_addrs":     "flag",
		"api.addr":             "env",
		"raft.stall_timeout":   "file",
		"gossip.sync_interval": "file",
		"gossip.sync_timeout":  "default",
		"p2p.mdns":             "default",
	} {
		if got := shown.Sources[key]; got != want {
			t.Errorf("%s: source %q, want %q", key, got, want)
		}
	}
	// An invalid effective config is an error naming the key.
	code, _, stderr = cli(t, "config", "show", "--data", data, "--log-level", "loud")
	if code != 1 || !strings.Contains(stderr, "log_level") {
		t.Fatalf("bad flag: exit %d, %s", code, stderr)
	}
	if code, _, stderr = cli(t, "config", "list"); code != 2 || !strings.Contains(stderr, "config show") {
		t.Fatalf("config list: exit %d, %s", code, stderr)
	}
}
