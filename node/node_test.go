package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestLoadConfigErrors(t *testing.T) {
	if _, err := node.LoadConfig(filepath.Join(t.TempDir(), "nope"), nil); !errors.Is(err, node.ErrNotInitialised) {
		t.Fatalf("missing dir: err = %v", err)
	}
	cfg := initDir(t)
	os.WriteFile(filepath.Join(cfg.DataDir, node.ConfigFile), []byte(`{"p2p": {"listen": []}}`), 0o644)
	if _, err := node.LoadConfig(cfg.DataDir, nil); err == nil {
		t.Fatal("unknown config field accepted")
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
	for _, want := range []string{"go_goroutines", "synapse_last_executed_seq 0", "synapse_final_seq 0", "synapse_gossip_ops", "synapse_raft_leader", "synapse_executor_paused 0",
		"synapse_raft_leader_changes_total", "synapse_raft_heartbeat_lag_seconds", "synapse_raft_term"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("/metrics lacks %q: %.300s", want, b)
		}
	}
}
