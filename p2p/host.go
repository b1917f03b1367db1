// Package p2p builds the libp2p host of a synapse-p2p node: its persisted
// Ed25519 identity, TCP and QUIC transports with Noise and TLS, connection
// and resource managers, a Kademlia DHT namespaced per network, peer
// discovery (bootstrap peers, DHT rendezvous, mDNS) and NAT traversal
// (AutoNAT, circuit relay v2 service and AutoRelay, DCUtR hole punching;
// docs/nat.md).
package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Host is a libp2p host with the network's DHT and discovery attached.
// It embeds host.Host, so it can be passed wherever one is expected.
type Host struct {
	host.Host
	// DHT is the network's Kademlia DHT (protocol prefix /synapse/<netID>).
	DHT *dht.IpfsDHT

	cfg          Config
	netID        string
	bootstrap    []peer.AddrInfo
	staticRelays []peer.AddrInfo
	log          *slog.Logger
	nat          *natState
	relaySvc     *relayService // nil when the relay service is off
	lookups      atomic.Int64  // rendezvous lookups, for RendezvousLookups

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	mdns    mdns.Service
	closer  lifecycle.Once
}

// protocolPrefix is the namespace of every synapse protocol of a network.
func protocolPrefix(netID string) protocol.ID {
	return protocol.ID("/synapse/" + netID)
}

// New builds the host and its DHT. The host listens as soon as New returns;
// discovery starts with Start. log may be nil; extra holds programmatic
// options (options.go).
func New(ctx context.Context, cfg Config, key crypto.PrivKey, netID string, log *slog.Logger, extra ...Option) (*Host, error) {
	var ho hostOptions
	ho.apply(extra)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no identity key", ErrInvalidConfig)
	}
	if netID == "" {
		return nil, fmt.Errorf("%w: empty network ID", ErrInvalidConfig)
	}
	if ho.noRelay && (cfg.RelayClient.Enabled || cfg.RelayService.Enabled) {
		return nil, fmt.Errorf("%w: relay_client and relay_service need the relay transport that WithoutRelay turns off", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bootstrap, _ := parseBootstrap(cfg.Bootstrap) // validated above
	staticRelays, _ := parsePeerAddrs("relay_client.static_relays", cfg.RelayClient.StaticRelays)
	af, _ := newAddrsFactory(cfg.Announce, cfg.NoAnnounce)
	if docnetPublic {
		log.Warn("built with the synapse_docnet tag: the documentation range 203.0.113.0/24 counts as a public internet address (for the NAT tests only)")
	}

	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg.ConnHigh)))
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		// TLS first: its AES-GCM uses the CPU's AES instructions. Fetching a
		// 16 MiB package, encryption costs 0.22 s of CPU per 30 fetches with
		// TLS against 0.60 s per 40 with Noise's ChaCha20-Poly1305, 12 % less
		// CPU per fetch overall (docs/benchmarks.md, bitswap). Both stay
		// available, so peers that only speak Noise still connect.
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent("synapse-p2p"),
	}
	switch {
	case ho.transport != nil:
		opts = append(opts, libp2p.Transport(ho.transport))
	case ho.noTCP:
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	default:
		opts = append(opts, libp2p.Transport(quic.NewTransport), libp2p.Transport(tcp.NewTCPTransport))
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if af != nil {
		opts = append(opts, libp2p.AddrsFactory(af.apply))
	}
	// AutoRelay asks for candidates only after the host runs; self is set
	// before libp2p.New returns to anything that could call it.
	var self atomic.Pointer[Host]
	nat := newNATState(cfg, log)
	opts = append(opts, natOptions(cfg, nat, func(ctx context.Context, num int) <-chan peer.AddrInfo {
		h := self.Load()
		if h == nil {
			ch := make(chan peer.AddrInfo)
			close(ch)
			return ch
		}
		return h.relayCandidates(ctx, num)
	})...)
	h, err := libp2p.New(append(opts, ho.tail()...)...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	natSub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtAutoRelayAddrsUpdated),
	})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("p2p: subscribe to reachability events: %w", err)
	}
	mode := map[string]dht.ModeOpt{
		DHTModeAuto:   dht.ModeAutoServer,
		DHTModeServer: dht.ModeServer,
		DHTModeClient: dht.ModeClient,
	}[cfg.DHTMode]
	d, err := dht.New(h,
		dht.Mode(mode),
		dht.ProtocolPrefix(protocolPrefix(netID)),
		dht.BootstrapPeers(bootstrap...),
	)
	if err != nil {
		natSub.Close()
		h.Close()
		return nil, fmt.Errorf("p2p: start DHT: %w", err)
	}
	hctx, cancel := context.WithCancel(context.Background())
	out := &Host{
		Host:         h,
		DHT:          d,
		cfg:          cfg,
		netID:        netID,
		bootstrap:    bootstrap,
		staticRelays: staticRelays,
		log:          log,
		nat:          nat,
		ctx:          hctx,
		cancel:       cancel,
	}
	if cfg.RelayService.Enabled {
		out.relaySvc = newRelayService(h, cfg.RelayService, nat, log)
		// A configured reachability decides at once.
		out.relaySvc.update(out.NATStatus().Reachability == ReachabilityPublic)
	}
	self.Store(out)
	out.wg.Add(1)
	go func() {
		defer out.wg.Done()
		out.watchNAT(hctx, natSub)
	}()
	return out, nil
}

// Start begins keeping bootstrap connections, DHT rendezvous discovery and,
// when configured, mDNS. It may be called once.
func (h *Host) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("p2p: host closed")
	}
	if h.started {
		return errors.New("p2p: host already started")
	}
	h.started = true
	if err := h.DHT.Bootstrap(h.ctx); err != nil {
		return fmt.Errorf("p2p: bootstrap DHT: %w", err)
	}
	if len(h.bootstrap) > 0 {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.keepBootstrapped(h.ctx, h.bootstrap)
		}()
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.discover(h.ctx)
	}()
	if h.cfg.MDNS {
		h.mdns = mdns.NewMdnsService(h.Host, "synapse-"+h.netID, mdnsNotifee{h})
		if err := h.mdns.Start(); err != nil {
			return fmt.Errorf("p2p: start mDNS: %w", err)
		}
	}
	return nil
}

// rendezvous is the DHT key under which the network's nodes advertise.
func (h *Host) rendezvous() string { return "synapse/" + h.netID + "/nodes" }

// discover advertises this node under the network's rendezvous key and,
// while the node has fewer peers than the connection manager's low
// watermark, looks the key up and dials what it finds. It polls every
// second until the node has a peer.
//
// A node at or above the watermark does not look the key up at all: a DHT
// server answers GET_PROVIDERS with every record of the key that fits in a
// message (about a thousand), and the key lives on the same k servers
// however large the network is, so N nodes looking it up every interval
// cost those servers N² records per interval. At 1000 simulated nodes that
// was 3.3 MB/s of uplink per server, which delayed everything else they
// sent by seconds (docs/benchmarks.md, "Rendezvous discovery"). Below the
// watermark the lookup repeats every 2 s while it finds new peers and backs
// off to DiscoveryInterval while it finds none: in a network smaller than
// the watermark, every node stays below it for good.
func (h *Host) discover(ctx context.Context) {
	rd := drouting.NewRoutingDiscovery(h.DHT)
	period := h.cfg.DiscoveryInterval
	fast := min(period, 2*time.Second)
	var nextAdvertise time.Time
	wait := fast
	for {
		if n := len(h.Network().Peers()); n == 0 {
			wait = time.Second
		} else {
			if time.Now().After(nextAdvertise) {
				actx, cancel := context.WithTimeout(ctx, period)
				ttl, err := rd.Advertise(actx, h.rendezvous())
				cancel()
				if err != nil {
					h.log.Debug("advertise failed", "err", err)
				} else {
					nextAdvertise = time.Now().Add(min(ttl/2, 10*period))
				}
			}
			if n >= h.cfg.ConnLow {
				wait = period
			} else {
				wait = lookupBackoff(wait, h.findPeers(ctx, rd), fast, period)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// lookupBackoff is how long a node below the low watermark waits for its
// next rendezvous lookup, given the previous wait and how many new peers
// the lookup just connected to: fast while lookups find peers, doubling up
// to period while they find none.
func lookupBackoff(wait time.Duration, found int, fast, period time.Duration) time.Duration {
	if found > 0 {
		return fast
	}
	return min(max(2*wait, fast), period)
}

// findPeers looks up the rendezvous key and dials the nodes found there
// until the low watermark is reached. It returns how many it connected to.
func (h *Host) findPeers(ctx context.Context, rd *drouting.RoutingDiscovery) int {
	h.lookups.Add(1)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The answer lists peers we are connected to, and ourselves; twice the
	// watermark leaves room for those and for stale records, and lets the
	// lookup stop at the first server that knows that many.
	ch, err := rd.FindPeers(fctx, h.rendezvous(), discovery.Limit(2*h.cfg.ConnLow+1))
	if err != nil {
		h.log.Debug("find peers failed", "err", err)
		return 0
	}
	connected := 0
	for ai := range ch {
		// A peer reached only through a relay (Limited) stays so: a direct
		// connection comes from its hole punch, not from dialling again.
		if c := h.Network().Connectedness(ai.ID); ai.ID == h.ID() || len(ai.Addrs) == 0 || c == network.Connected || c == network.Limited {
			continue
		}
		if len(h.Network().Peers()) >= h.cfg.ConnLow {
			cancel() // enough: stop the lookup, drain what is under way
			continue
		}
		dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
		if err := h.Connect(dctx, ai); err != nil {
			h.log.Debug("dial discovered peer failed", "peer", ai.ID, "err", err)
		} else {
			connected++
		}
		dcancel()
	}
	return connected
}

// RendezvousLookups is how many times this host has looked up the
// network's rendezvous key in the DHT.
func (h *Host) RendezvousLookups() int64 { return h.lookups.Load() }

type mdnsNotifee struct{ h *Host }

// HandlePeerFound dials a peer announced on the local network.
func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	h := n.h
	if ai.ID == h.ID() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		ctx, cancel := context.WithTimeout(h.ctx, dialTimeout)
		defer cancel()
		if err := h.Connect(ctx, ai); err != nil {
			h.log.Debug("dial mDNS peer failed", "peer", ai.ID, "err", err)
		}
	}()
}

// AddrInfo is this host's ID and listen addresses.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// P2PAddrs are the host's addresses with the /p2p/<id> suffix, ready to be
// given to another node as a bootstrap address.
func (h *Host) P2PAddrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Close stops discovery, the DHT and the host, waiting for discovery until
// ctx is done. Every call returns the first call's result.
func (h *Host) Close(ctx context.Context) error {
	return h.closer.Do(func() error {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.cancel()
		var errs []error
		if h.mdns != nil {
			errs = append(errs, h.mdns.Close())
		}
		errs = append(errs, lifecycle.Wait(ctx, "p2p discovery", h.wg.Wait))
		if h.relaySvc != nil {
			h.relaySvc.close()
		}
		errs = append(errs, h.DHT.Close(), h.Host.Close())
		return errors.Join(errs...)
	})
}
