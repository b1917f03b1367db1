package httpapi_test

import (
	"errors"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

func TestConfigValidateLimits(t *testing.T) {
	for name, mod := range map[string]func(*httpapi.Config){
		"no dry runs":        func(c *httpapi.Config) { c.MaxDryRuns = 0 },
		"negative queue":     func(c *httpapi.Config) { c.DryRunQueue = -1 },
		"zero queue timeout": func(c *httpapi.Config) { c.DryRunQueueTimeout = 0 },
		"no event clients":   func(c *httpapi.Config) { c.MaxEventClients = 0 },
		"empty allowed host": func(c *httpapi.Config) { c.AllowedHosts = []string{""} },
		"wildcard host":      func(c *httpapi.Config) { c.AllowedHosts = []string{"*.example"} },
	} {
		t.Run(name, func(t *testing.T) {
			c := httpapi.DefaultConfig()
			mod(&c)
			if err := c.Validate(); !errors.Is(err, httpapi.ErrInvalidConfig) {
				t.Errorf("%s: err = %v", name, err)
			}
		})
	}
	c := httpapi.DefaultConfig()
	c.DryRunQueue = 0
	if err := c.Validate(); err != nil {
		t.Fatalf("queue 0 (refuse at once): %v", err)
	}
}
