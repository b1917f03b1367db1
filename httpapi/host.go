package httpapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A DNS-rebinding page (evil.example, whose name first resolves to the
// attacker and then to 127.0.0.1) is same-origin with the API in the
// visitor's browser and can read every GET. Its requests still carry
// "Host: evil.example", so the API answers only to Host values that name
// this machine: hostPolicy decides which.

// hostPattern is one entry of Config.AllowedHosts: a lower-case host name
// or IP literal and, optionally, a port.
type hostPattern struct {
	host string
	port string // "" matches any port
}

// parseAllowedHost reads an api.allowed_hosts entry: "name", "name:port",
// "1.2.3.4", "1.2.3.4:80", "::1", "[::1]" or "[::1]:80". Schemes, paths
// and wildcards are refused.
func parseAllowedHost(s string) (hostPattern, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return hostPattern{}, fmt.Errorf("empty host")
	}
	if strings.ContainsAny(s, "/*@?# \t") {
		return hostPattern{}, fmt.Errorf("%q: want a host name or IP literal with an optional port (no scheme, path or wildcard)", in)
	}
	if a, err := netip.ParseAddr(s); err == nil { // bare IP, IPv6 without brackets
		return hostPattern{host: canonicalIP(a)}, nil
	}
	host, port, ok := splitHostPort(s)
	if !ok || host == "" {
		return hostPattern{}, fmt.Errorf("%q: not a host or host:port", in)
	}
	return hostPattern{host: host, port: port}, nil
}

// splitHostPort splits a Host header value into a lower-case host (IP
// literals in canonical form, a trailing dot dropped) and a port, which may
// be empty. ok is false when the value is malformed.
func splitHostPort(hostport string) (host, port string, ok bool) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", "", false
		}
		host, rest := hostport[1:end], hostport[end+1:]
		if rest != "" {
			if port, ok = strings.CutPrefix(rest, ":"); !ok {
				return "", "", false
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", "", false
		}
		host = canonicalIP(a)
		return host, port, validPort(port)
	}
	switch strings.Count(hostport, ":") {
	case 0:
		host = hostport
	case 1:
		host, port, _ = strings.Cut(hostport, ":")
	default: // an IPv6 literal must be in brackets
		return "", "", false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = canonicalIP(a)
	}
	return host, port, validPort(port)
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535 && !strings.HasPrefix(p, "+")
}

// canonicalIP is the one spelling of an address used for comparisons:
// IPv4-mapped IPv6 unmapped, zone dropped.
func canonicalIP(a netip.Addr) string {
	return a.Unmap().WithZone("").String()
}

// hostPolicy decides which Host header values the API answers to.
type hostPolicy struct {
	bindHost string // host of Config.Addr; "" when it is unspecified (all interfaces)
	exposed  bool   // Config.Addr is not a loopback address
	allowed  []hostPattern

	// interfaceAddrs lists this machine's interface addresses; the list
	// is cached for ifaceTTL because it only matters for exposed servers
	// and changes rarely.
	interfaceAddrs func() ([]net.Addr, error)
	mu             sync.Mutex
	ifaces         map[string]bool
	ifacesAt       time.Time
}

const ifaceTTL = 10 * time.Second

func newHostPolicy(cfg Config) *hostPolicy {
	p := &hostPolicy{interfaceAddrs: net.InterfaceAddrs}
	if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
		p.exposed = !isLoopback(h)
		host, _, ok := splitHostPort(bracket(h))
		a, err := netip.ParseAddr(host)
		if ok && host != "" && (err != nil || !a.IsUnspecified()) {
			p.bindHost = host
		}
	}
	for _, s := range cfg.AllowedHosts {
		if hp, err := parseAllowedHost(s); err == nil { // Validate refused bad entries
			p.allowed = append(p.allowed, hp)
		}
	}
	return p
}

// bracket puts an IPv6 literal back into brackets, as it appears in a
// Host header.
func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// allow reports whether the API answers to r's Host header.
func (p *hostPolicy) allow(r *http.Request) bool {
	host, port, ok := splitHostPort(r.Host)
	if !ok || host == "" {
		return false
	}
	if isLoopback(host) || host == p.bindHost {
		return true
	}
	for _, a := range p.allowed {
		if a.host == host && (a.port == "" || a.port == port) {
			return true
		}
	}
	if !p.exposed {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if local := localAddr(r.Context()); local.IsValid() && canonicalIP(local) == host {
		return true
	}
	return p.isInterfaceAddr(canonicalIP(ip))
}

// localAddr is the address of this server that the request arrived at.
func localAddr(ctx context.Context) netip.Addr {
	if a, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr()
		}
	}
	return netip.Addr{}
}

func (p *hostPolicy) isInterfaceAddr(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ifaces == nil || time.Since(p.ifacesAt) > ifaceTTL {
		addrs, err := p.interfaceAddrs()
		if err != nil {
			return false
		}
		p.ifaces = map[string]bool{}
		for _, a := range addrs {
			var s string
			switch v := a.(type) {
			case *net.IPNet:
				s = v.IP.String()
			case *net.IPAddr:
				s = v.IP.String()
			default:
				s = a.String()
			}
			if ia, err := netip.ParseAddr(s); err == nil {
				p.ifaces[canonicalIP(ia)] = true
			}
		}
		p.ifacesAt = time.Now()
	}
	return p.ifaces[ip]
}

// misdirected answers a request whose Host is not allowed.
func (s *Server) misdirected(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if len(host) > 100 {
		host = host[:100] + "…"
	}
	s.log.Debug("api request refused: host not allowed", "request_id", requestID(r.Context()), "host", host, "remote", r.RemoteAddr)
	writeError(w, r, http.StatusMisdirectedRequest, fmt.Sprintf(
		"host %q is not allowed: this API answers to localhost, loopback addresses and its bind address; "+
			"to reach it under another name, add that name to api.allowed_hosts in config.json "+
			"(or SYNAPSE_API_ALLOWED_HOSTS, comma-separated)", host))
}
