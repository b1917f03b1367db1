package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSplitHostPort(t *testing.T) {
	for _, tc := range []struct {
		in, host, port string
		ok             bool
	}{
		{"localhost", "localhost", "", true},
		{"LocalHost:8000", "localhost", "8000", true},
		{"localhost.:8000", "localhost", "8000", true},
		{"127.0.0.1:8000", "127.0.0.1", "8000", true},
		{"[::1]:8000", "::1", "8000", true},
		{"[::1]", "::1", "", true},
		{"[0:0::1]:80", "::1", "80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1", "80", true},
		{"[fe80::1%25eth0]:80", "fe80::1", "80", true}, // zones are dropped
		{"::1", "", "", false},                         // IPv6 needs brackets in Host
		{"[::1", "", "", false},
		{"[::1]x", "", "", false},
		{"[127.0.0.1]:80", "", "", false},
		{"host:port", "", "", false},
		{"host:99999", "", "", false},
		{"host:+80", "", "", false},
		{"", "", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			host, port, ok := splitHostPort(tc.in)
			if ok != tc.ok || (ok && (host != tc.host || port != tc.port)) {
				t.Errorf("splitHostPort(%q) = %q, %q, %v; want %q, %q, %v", tc.in, host, port, ok, tc.host, tc.port, tc.ok)
			}
		})
	}
}

func TestParseAllowedHost(t *testing.T) {
	for in, want := range map[string]hostPattern{
		"node.example":        {host: "node.example"},
		"Node.Example:8443":   {host: "node.example", port: "8443"},
		"10.0.0.5":            {host: "10.0.0.5"},
		"10.0.0.5:8000":       {host: "10.0.0.5", port: "8000"},
		"fd00::5":             {host: "fd00::5"},
		"[fd00::5]":           {host: "fd00::5"},
		"[fd00::5]:8000":      {host: "fd00::5", port: "8000"},
		" spaced.example  ":   {host: "spaced.example"},
		"trailing.example.":   {host: "trailing.example"},
		"[::ffff:10.0.0.5]:1": {host: "10.0.0.5", port: "1"},
	} {
		t.Run(in, func(t *testing.T) {
			got, err := parseAllowedHost(in)
			if err != nil || got != want {
				t.Errorf("parseAllowedHost(%q) = %+v, %v; want %+v", in, got, err, want)
			}
		})
	}
	for _, in := range []string{"", "  ", "http://node.example", "node.example/api", "*.example", "user@host", "a:b:c", "host:port", "[::1"} {
		if got, err := parseAllowedHost(in); err == nil {
			t.Errorf("parseAllowedHost(%q) = %+v, want an error", in, got)
		}
	}
}

// An exposed server answers to IP literals of its interfaces (listed once
// per ifaceTTL) and to the address the connection arrived at; a server on
// loopback does not.
func TestHostPolicyInterfaces(t *testing.T) {
	calls := 0
	ifaces := func() ([]net.Addr, error) {
		calls++
		return []net.Addr{
			&net.IPNet{IP: net.ParseIP("192.0.2.7"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("2001:db8::7"), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	req := func(host string, local net.Addr) *http.Request {
		r := httptest.NewRequest("GET", "/state", nil)
		r.Host = host
		if local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
		}
		return r
	}
	exposed := newHostPolicy(Config{Addr: "0.0.0.0:8000"})
	exposed.interfaceAddrs = ifaces
	for host, want := range map[string]bool{
		"192.0.2.7:8000":    true,
		"192.0.2.7":         true,
		"[2001:db8::7]:80":  true,
		"192.0.2.8:8000":    false,
		"0.0.0.0:8000":      false, // the unspecified bind address is not a name of this node
		"evil.example:8000": false,
		"localhost:8000":    true,
	} {
		t.Run(host, func(t *testing.T) {
			if got := exposed.allow(req(host, nil)); got != want {
				t.Errorf("exposed: Host %q allowed = %v, want %v", host, got, want)
			}
		})
	}
	if calls != 1 {
		t.Errorf("interface list read %d times within its TTL, want 1", calls)
	}
	// The address the request arrived at counts even if the list misses it.
	if !exposed.allow(req("198.51.100.1:8000", &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 8000})) {
		t.Error("exposed: the connection's local address was refused")
	}
	// A failing interface list refuses rather than allows.
	broken := newHostPolicy(Config{Addr: "0.0.0.0:8000"})
	broken.interfaceAddrs = func() ([]net.Addr, error) { return nil, errors.New("netlink down") }
	if broken.allow(req("192.0.2.7:8000", nil)) {
		t.Error("interface list error: IP literal allowed")
	}

	loop := newHostPolicy(Config{Addr: "127.0.0.1:8000"})
	loop.interfaceAddrs = ifaces
	if loop.allow(req("192.0.2.7:8000", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 8000})) {
		t.Error("loopback server answered to an interface address")
	}

	bound := newHostPolicy(Config{Addr: "192.0.2.9:8000"})
	bound.interfaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	if !bound.allow(req("192.0.2.9:9999", nil)) {
		t.Error("bind address refused")
	}
	named := newHostPolicy(Config{Addr: "node.lan:8000"})
	named.interfaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	if !named.allow(req("NODE.lan:8000", nil)) || named.allow(req("other.lan:8000", nil)) {
		t.Error("bind host name: wrong decision")
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"http://127.0.0.1:8000", "127.0.0.1:8000", true},
		{"http://LOCALHOST:8000", "localhost:8000", true},
		{"http://node.example", "node.example", true},
		{"http://node.example", "node.example:80", true},
		{"http://node.example:80", "node.example", true},
		{"https://node.example", "node.example", true}, // behind a TLS proxy passing Host
		{"https://node.example", "node.example:443", true},
		{"https://node.example", "node.example:80", false},
		{"http://[::1]:8000", "[::1]:8000", true},
		{"http://[::1]:8000", "[::1]:8001", false},
		{"http://127.0.0.1:8000", "localhost:8000", false},
		{"ftp://127.0.0.1:8000", "127.0.0.1:8000", false},
		{"null", "127.0.0.1:8000", false},
		{"http://user@127.0.0.1:8000", "127.0.0.1:8000", false},
		{"http://127.0.0.1:8000/", "127.0.0.1:8000", true},
		{"http://127.0.0.1:8000/path", "127.0.0.1:8000", false},
		{"http://127.0.0.1:8000?x", "127.0.0.1:8000", false},
		{"http://", "127.0.0.1:8000", false},
		{"http://evil.example", "", false},
	} {
		t.Run(tc.origin+" on "+tc.host, func(t *testing.T) {
			if got := sameOrigin(tc.origin, tc.host); got != tc.want {
				t.Errorf("sameOrigin(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
			}
		})
	}
}
