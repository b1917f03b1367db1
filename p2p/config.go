package p2p

import (
	"errors"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
)

// DHT modes accepted in Config.DHTMode.
const (
	DHTModeAuto   = "auto"   // server unless AutoNAT finds the node unreachable
	DHTModeServer = "server" // always answer DHT queries
	DHTModeClient = "client" // query only
)

// Config describes the libp2p host of a node. The zero value is not valid;
// start from DefaultConfig or LoopbackConfig.
type Config struct {
	// ListenAddrs are multiaddrs to listen on (TCP and QUIC).
	ListenAddrs []string `json:"listen_addrs"`
	// Bootstrap are multiaddrs with a /p2p/ component. The host keeps a
	// connection to each, reconnecting with exponential backoff.
	Bootstrap []string `json:"bootstrap"`
	// ConnLow and ConnHigh are the connection manager's watermarks.
	ConnLow  int `json:"conn_low"`
	ConnHigh int `json:"conn_high"`
	// MDNS enables local-network discovery.
	MDNS bool `json:"mdns"`
	// DHTMode is one of auto, server, client.
	DHTMode string `json:"dht_mode"`
	// DiscoverySeconds is the period of DHT rendezvous discovery once the
	// node has peers (it runs faster until then).
	DiscoverySeconds int `json:"discovery_seconds"`
	// NATPortMap asks the gateway for a port mapping (UPnP/NAT-PMP).
	NATPortMap bool `json:"nat_port_map"`
}

// DefaultConfig listens on all interfaces on port 4001 (TCP and QUIC, IPv4
// and IPv6) with mDNS on.
func DefaultConfig() Config {
	return Config{
		ListenAddrs: []string{
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
			"/ip6/::/tcp/4001",
			"/ip6/::/udp/4001/quic-v1",
		},
		ConnLow:          32,
		ConnHigh:         96,
		MDNS:             true,
		DHTMode:          DHTModeAuto,
		DiscoverySeconds: 30,
	}
}

// LoopbackConfig listens on 127.0.0.1 on a random TCP port with mDNS off and
// the DHT in server mode: the setting for tests and simnet.
func LoopbackConfig() Config {
	c := DefaultConfig()
	c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	c.MDNS = false
	c.DHTMode = DHTModeServer
	c.DiscoverySeconds = 10
	return c
}

// ErrInvalidConfig wraps every configuration error of this package.
var ErrInvalidConfig = errors.New("p2p: invalid config")

// Validate checks addresses, watermarks and the DHT mode.
func (c Config) Validate() error {
	if len(c.ListenAddrs) == 0 {
		return fmt.Errorf("%w: no listen addresses", ErrInvalidConfig)
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: listen address %q: %v", ErrInvalidConfig, a, err)
		}
	}
	if _, err := ParseBootstrap(c.Bootstrap); err != nil {
		return err
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow || c.ConnHigh == 0 {
		return fmt.Errorf("%w: connection watermarks low=%d high=%d", ErrInvalidConfig, c.ConnLow, c.ConnHigh)
	}
	switch c.DHTMode {
	case DHTModeAuto, DHTModeServer, DHTModeClient:
	default:
		return fmt.Errorf("%w: dht_mode %q (want auto, server or client)", ErrInvalidConfig, c.DHTMode)
	}
	if c.DiscoverySeconds <= 0 {
		return fmt.Errorf("%w: discovery_seconds must be positive", ErrInvalidConfig)
	}
	return nil
}
