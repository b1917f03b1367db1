package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

func initDir(t *testing.T) node.Config {
	t.Helper()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.P2P = p2p.LoopbackConfig()
	cfg.API.Addr = "127.0.0.1:0"
	if _, err := node.Init(cfg, ""); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigPrecedence(t *testing.T) {
	cfg := initDir(t) // file: API 127.0.0.1:0, listen 127.0.0.1 tcp/0
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	// default < file
	c, err := node.LoadConfig(cfg.DataDir, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Addr != "127.0.0.1:0" || c.P2P.MDNS {
		t.Fatalf("file not applied over defaults: %+v", c)
	}
	if c.LogLevel != "info" {
		t.Fatalf("default log level lost: %q", c.LogLevel)
	}
	// file < env
	env["SYNAPSE_API"] = "127.0.0.1:9999"
	env["SYNAPSE_MDNS"] = "true"
	env["SYNAPSE_BOOTSTRAP"] = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQS1x2b5u39Ua7ZXxcHFVSh5kX7Cz4MTG7mQG5ENn8rdC, "
	c, err = node.LoadConfig(cfg.DataDir, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Addr != "127.0.0.1:9999" || !c.P2P.MDNS || len(c.P2P.Bootstrap) != 1 {
		t.Fatalf("env not applied over file: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	env["SYNAPSE_MDNS"] = "perhaps"
	if _, err := node.LoadConfig(cfg.DataDir, getenv); err == nil {
		t.Fatal("bad SYNAPSE_MDNS accepted")
	}
	// (flag > env is exercised by the CLI tests.)
}

// The NAT settings (docs/nat.md) come from config.json and SYNAPSE_*.
func TestNATConfigFromEnv(t *testing.T) {
	cfg := initDir(t) // loopback: AutoNAT, relays and hole punching off
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c, err := node.LoadConfig(cfg.DataDir, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.P2P.AutoNAT || c.P2P.RelayService.Enabled || c.P2P.RelayClient.Enabled || c.P2P.HolePunching {
		t.Fatalf("loopback config file has NAT features on: %+v", c.P2P)
	}
	const relay = "/ip4/203.0.113.10/udp/4001/quic-v1/p2p/12D3KooWQS1x2b5u39Ua7ZXxcHFVSh5kX7Cz4MTG7mQG5ENn8rdC"
	env["SYNAPSE_ANNOUNCE"] = "/ip4/203.0.113.7/tcp/4001, /ip4/203.0.113.7/udp/4001/quic-v1"
	env["SYNAPSE_NO_ANNOUNCE"] = "/ip4/10.0.0.0/ipcidr/8"
	env["SYNAPSE_STATIC_RELAYS"] = relay
	env["SYNAPSE_REACHABILITY"] = "public"
	for _, k := range []string{"AUTONAT", "RELAY_SERVICE", "RELAY_CLIENT", "HOLE_PUNCHING"} {
		env["SYNAPSE_"+k] = "true"
	}
	if c, err = node.LoadConfig(cfg.DataDir, getenv); err != nil {
		t.Fatal(err)
	}
	p := c.P2P
	if len(p.Announce) != 2 || len(p.NoAnnounce) != 1 || len(p.RelayClient.StaticRelays) != 1 || p.Reachability != "public" ||
		!p.AutoNAT || !p.RelayService.Enabled || !p.RelayClient.Enabled || !p.HolePunching {
		t.Fatalf("env not applied: %+v", p)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	env["SYNAPSE_ANNOUNCE"] = "none"
	if c, _ = node.LoadConfig(cfg.DataDir, getenv); c.P2P.Announce != nil {
		t.Fatalf("SYNAPSE_ANNOUNCE=none kept %v", c.P2P.Announce)
	}
	env["SYNAPSE_REACHABILITY"] = "sometimes"
	if c, _ = node.LoadConfig(cfg.DataDir, getenv); c.Validate() == nil {
		t.Fatal("SYNAPSE_REACHABILITY=sometimes accepted")
	}
	env["SYNAPSE_REACHABILITY"] = ""
	env["SYNAPSE_HOLE_PUNCHING"] = "maybe"
	if _, err := node.LoadConfig(cfg.DataDir, getenv); err == nil || !strings.Contains(err.Error(), "SYNAPSE_HOLE_PUNCHING") {
		t.Fatalf("bad bool: err = %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	if _, err := node.LoadConfig(filepath.Join(t.TempDir(), "nope"), nil); !errors.Is(err, node.ErrNotInitialised) {
		t.Fatalf("missing dir: err = %v", err)
	}
	cfg := initDir(t)
	for name, doc := range map[string]string{
		"unknown field":         `{"p2p": {"listen": []}}`,
		"unknown bitswap field": `{"bitswap": {"max_fetch_byte": 1}}`,
		"second document":       `{"log_level": "info"} {"api": {"token": "t"}}`,
		"stray brace":           `{"log_level": "info"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(filepath.Join(cfg.DataDir, node.ConfigFile), []byte(doc), 0o644)
			if _, err := node.LoadConfig(cfg.DataDir, nil); err == nil {
				t.Fatalf("%s accepted", name)
			}
		})
	}
	os.WriteFile(filepath.Join(cfg.DataDir, node.ConfigFile), []byte("{\"log_level\": \"debug\"}\n\n"), 0o644)
	if c, err := node.LoadConfig(cfg.DataDir, func(string) string { return "" }); err != nil || c.LogLevel != "debug" {
		t.Fatalf("config with trailing white space: %+v, %v", c.LogLevel, err)
	}
}

func TestNewRequiresInit(t *testing.T) {
	cfg := node.DefaultConfig(t.TempDir())
	if _, err := node.New(context.Background(), cfg); !errors.Is(err, node.ErrNotInitialised) {
		t.Fatalf("err = %v, want ErrNotInitialised", err)
	}
}

func TestInitKeepsIdentityAndGenesis(t *testing.T) {
	cfg := initDir(t)
	r1, err := node.Init(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if r1.CreatedKey || r1.CreatedConfig || r1.CreatedGenesis {
		t.Fatalf("second init recreated something: %+v", r1)
	}
}

func TestNodeLifecycle(t *testing.T) {
	cfg := initDir(t)
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + n.APIAddr() + "/id")
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		ID string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&id)
	resp.Body.Close()
	if id.ID != n.ID().String() {
		t.Fatalf("/id = %q, want %s", id.ID, n.ID())
	}
	// Badger allows one process per datastore: a second node on the same
	// directory must fail clearly, not corrupt anything.
	if _, err := node.New(ctx, cfg); err == nil {
		t.Fatal("second node on the same data dir started")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(cctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// Restart: same identity.
	n2, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close(ctx)
	if n2.ID() != n.ID() {
		t.Fatal("identity changed across restart")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	cfg := initDir(t)
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + n.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"go_goroutines", "synapse_last_executed_seq 0", "synapse_final_seq 0", "synapse_gossip_ops", "synapse_gossip_dropped_rpcs_total", "synapse_gossip_dropped_validation_total", "synapse_raft_leader", "synapse_executor_paused 0",
		"synapse_raft_leader_changes_total", "synapse_raft_heartbeat_lag_seconds", "synapse_raft_term", "synapse_rendezvous_lookups_total",
		"synapse_holepunch_attempts_total 0", "synapse_holepunch_successes_total 0", "synapse_relay_reservations 0",
		"synapse_relay_service_active 0", `synapse_reachability{reachability="unknown"} 1`, `synapse_reachability{reachability="public"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("/metrics lacks %q: %.300s", want, b)
		}
	}
}

// GET /peers says how each peer is connected, GET /id what the node knows
// of its reachability (here: two nodes on loopback, connected directly).
func TestPeersAndIDShowConnections(t *testing.T) {
	a := startNode(t, initDir(t))
	defer a.Close(context.Background())
	cfgB := initDir(t)
	for _, ad := range a.Addrs() {
		cfgB.P2P.Bootstrap = append(cfgB.P2P.Bootstrap, ad.String())
	}
	b := startNode(t, cfgB)
	defer b.Close(context.Background())

	var peers struct {
		Peers []struct {
			ID         string `json:"id"`
			Connection string `json:"connection"`
			Transport  string `json:"transport"`
			Conns      []struct {
				Direction string `json:"direction"`
				Relayed   bool   `json:"relayed"`
			} `json:"conns"`
		} `json:"peers"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(peers.Peers) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B never listed A in /peers")
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get("http://" + b.APIAddr() + "/peers")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&peers)
		resp.Body.Close()
	}
	p := peers.Peers[0]
	if p.ID != a.ID().String() || p.Connection != "direct" || p.Transport != "tcp" || len(p.Conns) == 0 || p.Conns[0].Relayed || p.Conns[0].Direction != "outbound" {
		t.Fatalf("B's /peers: %+v", peers)
	}
	resp, err := http.Get("http://" + b.APIAddr() + "/id")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var id struct {
		Reachability string   `json:"reachability"`
		RelayAddrs   []string `json:"relay_addrs"`
		RelayService *bool    `json:"relay_service"`
	}
	json.NewDecoder(resp.Body).Decode(&id)
	// Loopback addresses are never public: AutoNAT is off in the loopback
	// config and nothing claims a verdict.
	if id.Reachability != "unknown" || id.RelayAddrs == nil || len(id.RelayAddrs) != 0 || id.RelayService == nil || *id.RelayService {
		t.Fatalf("/id: %+v", id)
	}
}

// A config.json written before the WAN raft defaults keeps its LAN
// timeouts (the node does what its file says) and the node warns at start
// with the values to use; a config with today's defaults does not warn.
func TestWarnsOfLANRaftTimeouts(t *testing.T) {
	for _, lan := range []bool{true, false} {
		cfg := initDir(t)
		if lan {
			cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		}
		var buf testutil.SyncBuffer
		nd, err := node.New(context.Background(), cfg, node.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(buf.String(), "raft timeouts are the LAN values")
		if warned != lan {
			t.Fatalf("LAN timeouts %v: warned %v; log:\n%s", lan, warned, buf.String())
		}
		if lan && !strings.Contains(buf.String(), `heartbeat_timeout\": \"2s\"`) {
			t.Fatalf("the warning does not give the values to use:\n%s", buf.String())
		}
	}
}
