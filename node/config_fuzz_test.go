package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// configSeeds are config.json files: each section as init writes it, as
// an operator edits it, and broken files. Each seed holds one section:
// whole files (1.5 KiB) make the fuzzer's minimisation of every new input,
// quadratic in its length, eat the budget.
func configSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	def := DefaultConfig("/data")
	loop := p2p.LoopbackConfig()
	api := def.API
	api.Token = "secret"
	api.AllowedHosts = []string{"node.example", "[::1]:8000"}
	for _, sec := range []map[string]any{
		{"genesis": def.Genesis, "log_level": def.LogLevel},
		{"p2p": def.P2P}, {"p2p": loop},
		{"api": def.API}, {"api": api},
		{"upgrade": def.Upgrade},
		{"bitswap": def.Bitswap},
		{"raft": def.Raft},
		{"gossip": def.Gossip},
	} {
		b, err := json.Marshal(sec)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for _, doc := range []string{
		`{}`,
		`{"log_level":"debug","genesis":"/etc/synapse/genesis.json"}`,
		`{"api":{"addr":"0.0.0.0:8000","token":"t","dry_run_queue_timeout":"1m30s","max_dry_runs":1}}`,
		`{"api":{"addr":""},"p2p":{"listen_addrs":["/ip4/127.0.0.1/tcp/0"],"bootstrap":[],"dht_mode":"client"}}`,
		`{"bitswap":{"reprovide_interval":"12h","provider_search_delay":"50ms","max_fetch_bytes":1048576}}`,
		`{"raft":{"heartbeat_timeout":1000000000,"election_timeout":1000000000,"leader_lease_timeout":500000000}}`,
		`{"upgrade":{"timeout":300000000000,"memory_limit_bytes":268435456,"isolation":1,"allow_file_urls":true}}`,
		`{"upgrade":{"data_dir":"/elsewhere","compilation_cache_dir":"/tmp/c"}}`,
		`{"raft":{"heartbeat_timeout":"1s","election_timeout":"1s","leader_lease_timeout":"500ms"},"upgrade":{"isolation":"in-process"}}`,
		`{"gossip":{"sync_interval":"30s","max_sync_sessions":16}}`,
		`{"p2p":{"discovery_seconds":30,"relay_service":{"connection_duration_seconds":0,"connection_data_bytes":0,"reservation_ttl_seconds":60}}}`,
		`{"p2p":{"discovery_seconds":30,"discovery_interval":"30s"}}`,
		// refused or suspicious: unknown fields, a second document, bad types
		`{"log_level":"info","p2p":{"listen":[]}}`,
		`{"bitswap":{"reprovide_interval":"1h","max_fetch_byte":1}}`,
		`{"log_level":"info"} {"api":{"token":"ignored?"}}`,
		`{"api":{"dry_run_queue_timeout":30}}`,
		`{"p2p":null,"api":null,"upgrade":null,"bitswap":null,"raft":null}`,
		`[]`,
	} {
		out = append(out, []byte(doc))
	}
	return out
}

// FuzzLoadConfig: decoding config.json never panics; a config it accepts
// came from exactly one JSON document with no unknown field in any
// section, its Validate verdict is deterministic, and it round-trips
// through JSON (Write then LoadConfig) to the same config and verdict.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range configSeeds(f) {
		f.Add(s)
	}
	dir := f.TempDir()
	known := configKeys(f, DefaultConfig(dir))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := decodeConfig(dir, b)
		if err != nil {
			return
		}
		if cfg.DataDir != dir {
			t.Fatalf("data dir %q, want %q", cfg.DataDir, dir)
		}
		if !json.Valid(b) {
			t.Fatal("accepted a config.json that is not exactly one JSON document")
		}
		if err := unknownKeys(b, known); err != nil {
			t.Fatalf("accepted %v", err)
		}
		verdict := errString(cfg.Validate())
		if again := errString(cfg.Validate()); again != verdict {
			t.Fatalf("Validate not deterministic: %q then %q", verdict, again)
		}
		m, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		cfg2, err := decodeConfig(dir, m)
		if err != nil {
			t.Fatalf("written config refused: %v\n%s", err, m)
		}
		m2, err := json.MarshalIndent(cfg2, "", "  ")
		if err != nil || !bytes.Equal(m, m2) {
			t.Fatalf("config changed through write and load:\n%s\n---\n%s", m, m2)
		}
		if v2 := errString(cfg2.Validate()); v2 != verdict {
			t.Fatalf("Validate verdict changed through write and load: %q → %q", verdict, v2)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// configKeys lists the object keys a config.json may hold, as
// "section.key" in lower case (encoding/json matches keys without regard
// to case): every key of the written config, plus the omitempty ones.
func configKeys(tb testing.TB, c Config) map[string]bool {
	b, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	keys := map[string]bool{"api.token": true, "api.allowed_hosts": true, "upgrade.compilation_cache_dir": true,
		// set by the node; old files hold them, empty
		"upgrade.data_dir": true, "raft.dir": true, "raft.network_id": true,
		// old names (node/configlegacy.go)
		"p2p.discovery_seconds": true}
	for k, v := range doc {
		keys[strings.ToLower(k)] = true
		if sec, ok := v.(map[string]any); ok {
			for kk := range sec {
				keys[strings.ToLower(k+"."+kk)] = true
			}
		}
	}
	return keys
}

// unknownKeys returns an error naming the first key of b, at the top level
// or inside a section, that is not a config field.
func unknownKeys(b []byte, known map[string]bool) error {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("a config that is not an object: %v", err)
	}
	for k, v := range doc {
		if !known[strings.ToLower(k)] {
			return fmt.Errorf("unknown field %q", k)
		}
		var sec map[string]json.RawMessage
		if json.Unmarshal(v, &sec) != nil {
			continue // not an object: a scalar field, or null
		}
		for kk := range sec {
			if !known[strings.ToLower(k+"."+kk)] {
				return fmt.Errorf("unknown field %q in section %q", kk, k)
			}
		}
	}
	return nil
}
