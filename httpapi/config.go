package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config configures the REST API server.
type Config struct {
	// Addr is host:port to listen on. Default 127.0.0.1:8000. An empty
	// string disables the API.
	Addr string `json:"addr"`
	// Token is the bearer token mutating endpoints require. It is mandatory
	// when Addr is not a loopback address.
	Token string `json:"token,omitempty"`
	// AllowedHosts are further Host header values the API answers to, as
	// "name" (any port) or "name:port" (IP literals too, IPv6 in brackets
	// with a port). Without them the API answers only to localhost,
	// loopback addresses and the host of Addr — and, when Addr is not a
	// loopback address, to IP literals of this machine's interfaces. Every
	// other Host is refused with 421, which stops DNS-rebinding pages from
	// reading the API through a visitor's browser. Env
	// SYNAPSE_API_ALLOWED_HOSTS (comma-separated).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// MaxBodyBytes caps JSON request bodies.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// MaxPackageBytes caps package uploads (POST /packages).
	MaxPackageBytes int64 `json:"max_package_bytes"`
	// MaxDryRuns is how many dry runs (POST /upgrades/{id}/test) may run at
	// once; each one is a sandbox child with up to the network's memory
	// limit (256 MiB by default).
	MaxDryRuns int `json:"max_dry_runs"`
	// DryRunQueue is how many further dry runs may wait for a slot; beyond
	// it the API answers 429 at once.
	DryRunQueue int `json:"dry_run_queue"`
	// DryRunQueueTimeout is how long a dry run waits for a slot before it is
	// answered 429.
	DryRunQueueTimeout time.Duration `json:"dry_run_queue_timeout"`
	// MaxEventClients is how many GET /events streams (the dashboard's live
	// updates) may be open at once; further ones are answered 503 with
	// Retry-After.
	MaxEventClients int `json:"max_event_clients"`
}

// Defaults of Config.
const (
	defaultAddr               = "127.0.0.1:8000"
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxPackageBytes    = 64 << 20
	DefaultMaxDryRuns         = 2
	DefaultDryRunQueue        = 8
	DefaultDryRunQueueTimeout = 30 * time.Second
	DefaultMaxEventClients    = 32
)

// DefaultConfig binds to 127.0.0.1:8000 with 1 MiB JSON bodies, 64 MiB
// package uploads, 2 concurrent dry runs and 8 waiting for up to 30 s, and
// at most 32 event streams.
func DefaultConfig() Config {
	return Config{
		Addr:               defaultAddr,
		MaxBodyBytes:       DefaultMaxBodyBytes,
		MaxPackageBytes:    DefaultMaxPackageBytes,
		MaxDryRuns:         DefaultMaxDryRuns,
		DryRunQueue:        DefaultDryRunQueue,
		DryRunQueueTimeout: DefaultDryRunQueueTimeout,
		MaxEventClients:    DefaultMaxEventClients,
	}
}

// ErrInvalidConfig wraps every configuration error of this package.
var ErrInvalidConfig = errors.New("api: invalid config")

// Validate checks the address, refuses a non-loopback address without a
// token, and checks the limits and the allowed hosts.
func (c Config) Validate() error {
	if c.Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: addr %q: %v", ErrInvalidConfig, c.Addr, err)
	}
	if port == "" {
		return fmt.Errorf("%w: addr %q has no port", ErrInvalidConfig, c.Addr)
	}
	if c.MaxBodyBytes <= 0 || c.MaxPackageBytes <= 0 {
		return fmt.Errorf("%w: max_body_bytes and max_package_bytes must be positive", ErrInvalidConfig)
	}
	if c.MaxDryRuns < 1 {
		return fmt.Errorf("%w: max_dry_runs %d (want at least 1)", ErrInvalidConfig, c.MaxDryRuns)
	}
	if c.DryRunQueue < 0 {
		return fmt.Errorf("%w: dry_run_queue %d (want 0 or more)", ErrInvalidConfig, c.DryRunQueue)
	}
	if c.DryRunQueueTimeout <= 0 {
		return fmt.Errorf("%w: dry_run_queue_timeout %s (want > 0)", ErrInvalidConfig, c.DryRunQueueTimeout)
	}
	if c.MaxEventClients < 1 {
		return fmt.Errorf("%w: max_event_clients %d (want at least 1)", ErrInvalidConfig, c.MaxEventClients)
	}
	for _, h := range c.AllowedHosts {
		if _, err := parseAllowedHost(h); err != nil {
			return fmt.Errorf("%w: allowed_hosts: %v", ErrInvalidConfig, err)
		}
	}
	if !isLoopback(host) && c.Token == "" {
		return fmt.Errorf("%w: addr %q is not a loopback address, so api.token (or SYNAPSE_API_TOKEN) must be set", ErrInvalidConfig, c.Addr)
	}
	return nil
}

// isLoopback reports whether host names only this machine: localhost or an
// address in 127.0.0.0/8 or ::1. An empty host (all interfaces) is not.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
