package node_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

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

// A node serves its API only under names of its own.
func TestAPIHardeningOnNode(t *testing.T) {
	cfg := initDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
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
}
