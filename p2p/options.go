package p2p

import "github.com/libp2p/go-libp2p"

// Option adjusts how New builds a host beyond Config: programmatic settings
// that have no place in config.json, such as the transport of a simulated
// network.
type Option func(*hostOptions)

type hostOptions struct {
	libp2p    []libp2p.Option
	noTCP     bool
	noRelay   bool
	noMetrics bool
	transport any // replaces QUIC and TCP when set
}

// WithLibp2pOptions appends options to the host's libp2p options, after
// the node's own: for example x/simlibp2p.QUICSimnet, which puts the QUIC
// transport on an in-memory simulated network.
func WithLibp2pOptions(opts ...libp2p.Option) Option {
	return func(o *hostOptions) { o.libp2p = append(o.libp2p, opts...) }
}

// WithoutTCP leaves the TCP transport out: a host on a simulated network
// has only QUIC over its simulated links (and must not open real sockets).
// Config.ListenAddrs must then hold no TCP address.
func WithoutTCP() Option { return func(o *hostOptions) { o.noTCP = true } }

// WithTransport makes ctor (a libp2p transport constructor, as for
// libp2p.Transport) the host's only transport in place of QUIC and TCP:
// for example the in-memory streams of a simulated network. Security and
// stream multiplexing stay libp2p's (TLS or Noise, yamux) for transports
// that need them. Config.ListenAddrs must be addresses it listens on.
func WithTransport(ctor any) Option { return func(o *hostOptions) { o.transport = ctor } }

// WithoutRelay turns off the circuit-relay transport (on by default in
// libp2p): a node that is directly reachable, or a simulated one.
// Config.RelayClient and Config.RelayService must then be off.
func WithoutRelay() Option { return func(o *hostOptions) { o.noRelay = true } }

// WithoutMetrics turns off libp2p's own Prometheus metrics (swarm,
// identify, resource manager, …): for a node that serves no /metrics, and
// for many hosts in one process, where they all report into one registry.
func WithoutMetrics() Option { return func(o *hostOptions) { o.noMetrics = true } }

func (o *hostOptions) apply(opts []Option) {
	for _, opt := range opts {
		opt(o)
	}
}

// tail is what goes after the host's own libp2p options.
func (o *hostOptions) tail() []libp2p.Option {
	var out []libp2p.Option
	if o.noRelay {
		out = append(out, libp2p.DisableRelay())
	}
	if o.noMetrics {
		out = append(out, libp2p.DisableMetrics())
	}
	return append(out, o.libp2p...)
}
