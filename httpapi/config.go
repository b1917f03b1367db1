package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Config configures the REST API server.
type Config struct {
	// Addr is host:port to listen on. Default 127.0.0.1:8000. An empty
	// string disables the API.
	Addr string `json:"addr"`
	// Token is the bearer token mutating endpoints require. It is mandatory
	// when Addr is not a loopback address.
	Token string `json:"token,omitempty"`
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

// Validate checks the address and refuses a non-loopback address without a
// token.
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
	if !IsLoopback(host) && c.Token == "" {
		return fmt.Errorf("%w: addr %q is not a loopback address, so api.token (or SYNAPSE_API_TOKEN) must be set", ErrInvalidConfig, c.Addr)
	}
	return nil
}

// IsLoopback reports whether host names only this machine: localhost or an
// address in 127.0.0.0/8 or ::1. An empty host (all interfaces) is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
