package httpapi_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// The api section round-trips through JSON with the timeout as a duration
// string; absent fields keep their value; unknown fields and bad values are
// errors.
func TestConfigJSON(t *testing.T) {
	c := httpapi.DefaultConfig()
	c.AllowedHosts = []string{"node.example", "[fd00::5]:8000"}
	c.DryRunQueueTimeout = 1500 * time.Millisecond
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dry_run_queue_timeout":"1.5s"`, `"max_dry_runs":2`, `"dry_run_queue":8`, `"max_event_clients":32`, `"allowed_hosts":["node.example","[fd00::5]:8000"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back httpapi.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip: %+v, want %+v", back, c)
	}

	// An old config.json without the new fields keeps the defaults.
	got := httpapi.DefaultConfig()
	if err := json.Unmarshal([]byte(`{"addr":"127.0.0.1:9000","max_body_bytes":1024,"max_package_bytes":2048}`), &got); err != nil {
		t.Fatal(err)
	}
	if got.Addr != "127.0.0.1:9000" || got.MaxDryRuns != 2 || got.DryRunQueue != 8 || got.DryRunQueueTimeout != 30*time.Second ||
		got.MaxEventClients != httpapi.DefaultMaxEventClients {
		t.Fatalf("partial section: %+v", got)
	}
	for _, bad := range []string{
		`{"allowed_host":["x"]}`,
		`{"dry_run_queue_timeout":"soon"}`,
		`{"dry_run_queue_timeout":30}`,
		`{"max_dry_runs":"2"}`,
	} {
		c := httpapi.DefaultConfig()
		if err := json.Unmarshal([]byte(bad), &c); !errors.Is(err, httpapi.ErrInvalidConfig) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestConfigValidateLimits(t *testing.T) {
	for name, mod := range map[string]func(*httpapi.Config){
		"no dry runs":        func(c *httpapi.Config) { c.MaxDryRuns = 0 },
		"negative queue":     func(c *httpapi.Config) { c.DryRunQueue = -1 },
		"zero queue timeout": func(c *httpapi.Config) { c.DryRunQueueTimeout = 0 },
		"no event clients":   func(c *httpapi.Config) { c.MaxEventClients = 0 },
		"empty allowed host": func(c *httpapi.Config) { c.AllowedHosts = []string{""} },
		"wildcard host":      func(c *httpapi.Config) { c.AllowedHosts = []string{"*.example"} },
	} {
		c := httpapi.DefaultConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, httpapi.ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	c := httpapi.DefaultConfig()
	c.DryRunQueue = 0
	if err := c.Validate(); err != nil {
		t.Fatalf("queue 0 (refuse at once): %v", err)
	}
}
