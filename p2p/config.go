package p2p

import (
	"errors"
	"fmt"
	"time"

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
	// DiscoveryInterval is the longest wait between DHT rendezvous lookups
	// of a node below ConnLow (they run every 2 s while they bring new
	// peers); a node at ConnLow does not look the key up.
	DiscoveryInterval time.Duration `json:"discovery_interval"`
	// NATPortMap asks the gateway for a port mapping (UPnP/NAT-PMP).
	NATPortMap bool `json:"nat_port_map"`

	// AutoNAT lets the node learn whether it is reachable from the
	// internet (AutoNAT v1 for the node as a whole, v2 per address) by
	// asking its peers to dial it back, and answer the same question for
	// them. docs/nat.md.
	AutoNAT bool `json:"autonat"`
	// Reachability is auto (AutoNAT decides), public or private (skip the
	// probes: public starts the relay service at once, private starts
	// looking for relays at once).
	Reachability string `json:"reachability"`
	// Announce, when set, replaces the direct (IP) addresses the node
	// tells its peers; relay addresses are still added while the node is
	// private. NoAnnounce removes addresses: exact multiaddrs, or address
	// ranges written /ip4/10.0.0.0/ipcidr/8. Like Kubo's
	// Addresses.Announce and Addresses.NoAnnounce.
	Announce   []string `json:"announce"`
	NoAnnounce []string `json:"no_announce"`
	// RelayService offers circuit relay v2 to other nodes while AutoNAT
	// finds this node public.
	RelayService RelayServiceConfig `json:"relay_service"`
	// RelayClient reserves slots on relays while this node is private and
	// announces the relay addresses.
	RelayClient RelayClientConfig `json:"relay_client"`
	// HolePunching upgrades relayed connections to direct ones with DCUtR
	// (TCP and QUIC).
	HolePunching bool `json:"hole_punching"`
}

// Reachability settings accepted in Config.Reachability.
const (
	ReachabilityAuto    = "auto"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
)

// RelayServiceConfig is the circuit relay v2 service a public node offers,
// like Kubo's Swarm.RelayService. Each relayed connection is cut after
// ConnectionDuration or ConnectionDataBytes in either direction;
// with both 0 the relay imposes no limit, and its relayed connections are
// full connections for both ends (for a relay run for the network's own
// validators, docs/nat.md).
type RelayServiceConfig struct {
	Enabled             bool          `json:"enabled"`
	ConnectionDuration  time.Duration `json:"connection_duration"`
	ConnectionDataBytes int64         `json:"connection_data_bytes"`
	// ReservationTTL is how long a reservation lasts before the client
	// must refresh it.
	ReservationTTL time.Duration `json:"reservation_ttl"`
	// MaxReservations bounds the reservations held at once,
	// MaxReservationsPerIP those from one IP address.
	MaxReservations      int `json:"max_reservations"`
	MaxReservationsPerIP int `json:"max_reservations_per_ip"`
	// MaxCircuits bounds the relayed connections to or from one peer.
	MaxCircuits int `json:"max_circuits"`
	// BufferSize is the size of each relayed stream's copy buffer.
	BufferSize int `json:"buffer_size"`
}

// RelayClientConfig is how a private node finds relays, like Kubo's
// Swarm.RelayClient.
type RelayClientConfig struct {
	Enabled bool `json:"enabled"`
	// StaticRelays, when set, are the only relay candidates (multiaddrs
	// with /p2p/). Otherwise the candidates are the bootstrap peers, then
	// connected peers that offer the relay protocol, then peers from the
	// DHT routing table.
	StaticRelays []string `json:"static_relays"`
}

// DefaultRelayServiceConfig has libp2p's (and Kubo's) defaults: 2 minutes
// and 128 KiB per relayed connection, 128 reservations of an hour, 16
// circuits per peer.
func DefaultRelayServiceConfig() RelayServiceConfig {
	return RelayServiceConfig{
		Enabled:              true,
		ConnectionDuration:   2 * time.Minute,
		ConnectionDataBytes:  128 << 10,
		ReservationTTL:       time.Hour,
		MaxReservations:      128,
		MaxReservationsPerIP: 8,
		MaxCircuits:          16,
		BufferSize:           2048,
	}
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
		ConnLow:           32,
		ConnHigh:          96,
		MDNS:              true,
		DHTMode:           DHTModeAuto,
		DiscoveryInterval: 30 * time.Second,
		AutoNAT:           true,
		Reachability:      ReachabilityAuto,
		RelayService:      DefaultRelayServiceConfig(),
		RelayClient:       RelayClientConfig{Enabled: true},
		HolePunching:      true,
	}
}

// LoopbackConfig listens on 127.0.0.1 on a random TCP port with mDNS off and
// the DHT in server mode: the setting for tests and simnet. Every address
// is a loopback one, so there is nothing for AutoNAT, relays and hole
// punching to do: they are off, and many hosts fit in one process.
func LoopbackConfig() Config {
	c := DefaultConfig()
	c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	c.MDNS = false
	c.DHTMode = DHTModeServer
	c.DiscoveryInterval = 10 * time.Second
	c.AutoNAT = false
	c.RelayService.Enabled = false
	c.RelayClient.Enabled = false
	c.HolePunching = false
	return c
}

// ErrInvalidConfig wraps every configuration error of this package.
var ErrInvalidConfig = errors.New("p2p: invalid config")

// Validate checks addresses, watermarks and the DHT mode.
func (c Config) Validate() error {
	if len(c.ListenAddrs) == 0 {
		return fmt.Errorf("%w: listen_addrs is empty", ErrInvalidConfig)
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: listen_addrs: %q: %v", ErrInvalidConfig, a, err)
		}
	}
	if _, err := parseBootstrap(c.Bootstrap); err != nil {
		return err
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow || c.ConnHigh == 0 {
		return fmt.Errorf("%w: conn_low %d, conn_high %d (want 0 <= conn_low <= conn_high, conn_high > 0)", ErrInvalidConfig, c.ConnLow, c.ConnHigh)
	}
	switch c.DHTMode {
	case DHTModeAuto, DHTModeServer, DHTModeClient:
	default:
		return fmt.Errorf("%w: dht_mode %q (want auto, server or client)", ErrInvalidConfig, c.DHTMode)
	}
	if c.DiscoveryInterval <= 0 {
		return fmt.Errorf("%w: discovery_interval must be positive", ErrInvalidConfig)
	}
	switch c.Reachability {
	case ReachabilityAuto, ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("%w: reachability %q (want auto, public or private)", ErrInvalidConfig, c.Reachability)
	}
	if _, err := newAddrsFactory(c.Announce, c.NoAnnounce); err != nil {
		return err
	}
	if err := c.RelayService.validate(); err != nil {
		return err
	}
	if _, err := parsePeerAddrs("relay_client.static_relays", c.RelayClient.StaticRelays); err != nil {
		return err
	}
	return nil
}

func (r RelayServiceConfig) validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: relay_service: %s", ErrInvalidConfig, fmt.Sprintf(f, a...))
	}
	if !r.Enabled {
		return nil
	}
	switch {
	case r.ConnectionDuration < 0 || r.ConnectionDataBytes < 0:
		return bad("connection_duration and connection_data_bytes must not be negative")
	case (r.ConnectionDuration == 0) != (r.ConnectionDataBytes == 0):
		return bad("connection_duration and connection_data_bytes are both set (limited relay) or both 0 (no limit), not one of them")
	case r.ReservationTTL <= 0:
		return bad("reservation_ttl must be positive")
	case r.MaxReservations <= 0 || r.MaxReservationsPerIP <= 0 || r.MaxCircuits <= 0:
		return bad("max_reservations, max_reservations_per_ip and max_circuits must be positive")
	case r.BufferSize < 512:
		return bad("buffer_size %d is below 512 bytes", r.BufferSize)
	}
	return nil
}
