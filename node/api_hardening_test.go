package node_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
)

// The API's new config fields live in config.json and
// SYNAPSE_API_ALLOWED_HOSTS overrides the list.
func TestAPIConfigFields(t *testing.T) {
	cfg := initDir(t)
	cfg.API.AllowedHosts = []string{"node.example"}
	cfg.API.MaxDryRuns, cfg.API.DryRunQueue, cfg.API.DryRunQueueTimeout = 3, 5, 7*time.Second
	if err := cfg.Write(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	c, err := node.LoadConfig(cfg.DataDir, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.API, cfg.API) {
		t.Fatalf("api section after write and load: %+v, want %+v", c.API, cfg.API)
	}
	env["SYNAPSE_API_ALLOWED_HOSTS"] = "a.example, b.example:8443,,"
	if c, err = node.LoadConfig(cfg.DataDir, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example", "b.example:8443"}; !reflect.DeepEqual(c.API.AllowedHosts, want) {
		t.Fatalf("env allowed hosts: %q, want %q", c.API.AllowedHosts, want)
	}
	env["SYNAPSE_API_ALLOWED_HOSTS"] = "https://a.example/"
	if c, err = node.LoadConfig(cfg.DataDir, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); !errors.Is(err, httpapi.ErrInvalidConfig) {
		t.Fatalf("bad env allowed host: Validate = %v", err)
	}
	os.WriteFile(filepath.Join(cfg.DataDir, node.ConfigFile), []byte(`{"api": {"allowed_host": ["x"]}}`), 0o644)
	if _, err := node.LoadConfig(cfg.DataDir, nil); err == nil {
		t.Fatal("unknown api field accepted")
	}
}

// A node serves its API only under names of its own and refuses proposals
// above the package size limit of its network state, over HTTP and in
// process.
func TestAPIHardeningOnNode(t *testing.T) {
	cfg := initDir(t)
	g, err := genesis.Load(cfg.GenesisPath())
	if err != nil {
		t.Fatal(err)
	}
	g.Governance.Limits.MaxPackageBytes = 1000
	if err := g.Write(cfg.GenesisPath()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, cfg)
	base := "http://" + n.APIAddr()
	api := apiClient{t, base, ""}

	req, _ := http.NewRequest("GET", base+"/state", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("GET /state with Host evil.example: %d", resp.StatusCode)
	}
	api.want(200, "GET", "/state", nil)

	gov, _, _ := n.APIBackends()
	lim, err := gov.ProposalLimits(ctx)
	if err != nil || lim.MaxPackageBytes != 1000 {
		t.Fatalf("limits %+v, %v", lim, err)
	}
	prop := map[string]any{
		"title": "big", "version": "1.2.0", "package_url": "https://example.org/p.wasm",
		"package_hash": "sha256:" + strings.Repeat("ab", 32), "package_size": 1001,
	}
	out := api.want(400, "POST", "/upgrades/propose", prop)
	if msg, _ := out["error"].(string); !strings.Contains(msg, "limit of 1000 bytes") {
		t.Fatalf("error %q does not name the limit", msg)
	}
	prop["package_size"] = 0
	api.want(400, "POST", "/upgrades/propose", prop)
	_, err = gov.Propose(ctx, httpapi.ProposeRequest{Title: "big", Version: "1.2.0", PackageURL: "https://example.org/p.wasm",
		PackageHash: strings.Repeat("ab", 32), PackageSize: 99_000_000_000})
	if !errors.Is(err, httpapi.ErrInvalid) {
		t.Fatalf("in-process proposal above the limit: err = %v", err)
	}
	prop["package_size"] = 1000
	api.want(201, "POST", "/upgrades/propose", prop)
}
