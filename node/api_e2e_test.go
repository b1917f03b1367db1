package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

func TestMain(m *testing.M) {
	upgrade.MaybeRunSandboxChild()
	os.Exit(m.Run())
}

// apiClient talks to one node's REST API with an optional token.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		c.t.Fatalf("%s %s: body is not a JSON object: %.200s", method, path, raw)
	}
	return resp.StatusCode, out
}

func (c apiClient) want(code int, method, path string, body any) map[string]any {
	c.t.Helper()
	got, out := c.do(method, path, body)
	if got != code {
		c.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, got, code, out)
	}
	if code >= 400 {
		if _, ok := out["error"].(string); !ok {
			c.t.Fatalf("%s %s: error body without \"error\": %v", method, path, out)
		}
	}
	return out
}

// A single-node network (the node is the only validator and voter) carries
// an upgrade end to end through the REST API, and every bad request gets
// its status code and an error body.
//
// It runs under -short too, so the node's wiring (executor, prefetcher, API
// adapters) runs under the race detector in CI: one package, compiled once
// into the user cache dir that the upgrade tests share (wazero keys cached
// modules by module hash and wazero version).
func TestAPIEndToEnd(t *testing.T) {
	cfg := initDir(t)
	cfg.API.Token = "s3cret"
	if c, err := os.UserCacheDir(); err == nil {
		cfg.Upgrade.CompilationCacheDir = filepath.Join(c, "synapse-p2p", "upgrade-test-wasm-cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := startNode(t, cfg)
	pkgPath, err := examplebuild.Build(ctx, "add-feature-flag", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + n.APIAddr()
	anon := apiClient{t, base, ""}
	api := apiClient{t, base, "s3cret"}

	st := anon.want(200, "GET", "/upgrades/status", nil)
	if st["current_version"] != "1.0.0" || st["system_available"] != true {
		t.Fatalf("status %v", st)
	}

	// Mutating endpoints need the token.
	anon.want(401, "POST", "/packages", pkg)
	anon.want(401, "POST", "/upgrades/propose", map[string]any{})
	info := api.want(201, "POST", "/packages", pkg)
	url, _ := info["url"].(string)
	if !strings.HasPrefix(url, "ipfs://Qm") {
		t.Fatalf("package url %q", url)
	}
	good := map[string]any{
		"title": "Add feature flag", "description": "e2e", "version": "1.2.0",
		"package_url": url, "package_hash": info["sha256"], "package_size": info["size"],
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	api.want(400, "POST", "/upgrades/propose", "{not json")
	api.want(400, "POST", "/upgrades/propose", with("title", ""))
	api.want(400, "POST", "/upgrades/propose", with("version", "1.0.0"))
	api.want(400, "POST", "/upgrades/propose", with("version", "banana"))
	api.want(400, "POST", "/upgrades/propose", with("package_hash", "md5:abc"))
	api.want(400, "POST", "/upgrades/propose", with("package_url", "ftp://x/y.wasm"))
	api.want(400, "POST", "/upgrades/propose", with("package_size", -1))
	api.want(400, "POST", "/upgrades/propose", with("unknown_field", 1))

	prop := api.want(201, "POST", "/upgrades/propose", good)
	id, _ := prop["proposal_id"].(string)
	if !strings.HasPrefix(id, "upgrade_") || prop["status"] != "voting" {
		t.Fatalf("propose answered %v", prop)
	}
	anon.want(404, "GET", "/proposals/upgrade_nope", nil)
	api.want(404, "POST", "/proposals/upgrade_nope/vote", map[string]any{"vote": "approval"})
	api.want(400, "POST", "/proposals/"+id+"/vote", map[string]any{"vote": "maybe"})

	// Dry run changes nothing.
	tr := api.want(200, "POST", "/upgrades/"+id+"/test", nil)
	if tr["success"] != true || tr["state_hash"] == st["state_hash"] {
		t.Fatalf("dry run %v", tr)
	}
	if s := anon.want(200, "GET", "/upgrades/status", nil); s["current_version"] != "1.0.0" || s["state_hash"] != st["state_hash"] {
		t.Fatalf("dry run changed the state: %v", s)
	}

	api.want(200, "POST", "/proposals/"+id+"/vote", map[string]any{"vote": "yes"})
	api.want(409, "POST", "/proposals/"+id+"/vote", map[string]any{"vote": "approval"})

	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := anon.want(200, "GET", "/upgrades/status", nil)
		if s["current_version"] == "1.2.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upgrade not executed: %v; proposal %v", s, anon.want(200, "GET", "/proposals/"+id, nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := anon.want(200, "GET", "/proposals/"+id, nil)
	if p["status"] != "executed" || p["ratification"] == nil {
		t.Fatalf("proposal after execution: %v", p)
	}
	lg := anon.want(200, "GET", "/execution-log", nil)
	if lg["count"] != float64(1) {
		t.Fatalf("execution log %v", lg)
	}
	vs := anon.want(200, "GET", "/validators", nil)
	if vs["self"] != true || vs["leader"] != n.ID().String() {
		t.Fatalf("validators %v", vs)
	}
	h := anon.want(200, "GET", "/upgrades/history", nil)
	hist, _ := h["history"].([]any)
	if len(hist) != 1 || hist[0].(map[string]any)["success"] != true {
		t.Fatalf("history %v", h)
	}
	if s := anon.want(200, "GET", "/state", nil); s["version"] != "1.2.0" {
		t.Fatalf("state %v", s)
	}

	// Local rollback: restores 1.0.0 and pauses the executor until resumed.
	anon.want(401, "POST", "/upgrades/"+id+"/rollback", nil)
	api.want(404, "POST", "/upgrades/upgrade_nope/rollback", nil)
	rb := api.want(200, "POST", "/upgrades/"+id+"/rollback", nil)
	if rb["restored_version"] != "1.0.0" || rb["previous_version"] != "1.2.0" {
		t.Fatalf("rollback %v", rb)
	}
	s := anon.want(200, "GET", "/upgrades/status", nil)
	if s["current_version"] != "1.0.0" || s["paused"] != true {
		t.Fatalf("status after rollback %v", s)
	}
	api.want(200, "POST", "/upgrades/resume", nil)
	api.want(409, "POST", "/upgrades/resume", nil)

	// The network moves on: a second upgrade becomes entry 2, chained to
	// entry 1, and executes on the restored state.
	again := api.want(201, "POST", "/upgrades/propose", with("title", "Again"))
	id2, _ := again["proposal_id"].(string)
	api.want(200, "POST", "/proposals/"+id2+"/vote", map[string]any{"vote": "approval"})
	deadline = time.Now().Add(2 * time.Minute)
	for {
		s := anon.want(200, "GET", "/upgrades/status", nil)
		if s["last_executed_seq"] == float64(2) {
			if s["current_version"] != "1.2.0" {
				t.Fatalf("entry 2 did not upgrade: %v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry 2 not executed: %v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`synapse_executions_total{outcome="success"} 2`, "synapse_last_executed_seq 2", "synapse_final_seq 2", "synapse_raft_leader 1"} {
		if !strings.Contains(string(mb), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	lg = anon.want(200, "GET", "/execution-log", nil)
	entries, _ := lg["entries"].([]any)
	if len(entries) != 2 || entries[1].(map[string]any)["prev_entry_hash"] != entries[0].(map[string]any)["entry_hash"] {
		t.Fatalf("execution log does not chain: %v", lg)
	}
}
