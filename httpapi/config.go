package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
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
}

// DefaultConfig binds to 127.0.0.1:8000 with 1 MiB JSON bodies and 64 MiB
// package uploads.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8000", MaxBodyBytes: 1 << 20, MaxPackageBytes: 64 << 20}
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
	for _, h := range c.AllowedHosts {
		if _, err := parseAllowedHost(h); err != nil {
			return fmt.Errorf("%w: allowed_hosts: %v", ErrInvalidConfig, err)
		}
	}
	if !IsLoopback(host) && c.Token == "" {
		return fmt.Errorf("%w: addr %q is not a loopback address, so api.token (or SYNAPSE_API_TOKEN) must be set", ErrInvalidConfig, c.Addr)
	}
	return nil
}

// IsLoopback reports whether host names only this machine: localhost or an
// address in 127.0.0.0/8 or ::1. An empty host (all interfaces) is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
