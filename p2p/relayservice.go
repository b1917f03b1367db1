package p2p

import (
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// relayService runs the circuit relay v2 service while the host is public
// (Config.RelayService), as libp2p's relay manager would on AutoNAT v1's
// word alone.
type relayService struct {
	h    host.Host
	opts []relayv2.Option
	log  *slog.Logger

	mu     sync.Mutex
	relay  *relayv2.Relay
	closed bool
}

func newRelayService(h host.Host, rs RelayServiceConfig, st *natState, log *slog.Logger) *relayService {
	rc := relayv2.DefaultResources()
	rc.ReservationTTL = rs.ReservationTTL
	rc.MaxReservations = rs.MaxReservations
	rc.MaxReservationsPerIP = rs.MaxReservationsPerIP
	rc.MaxCircuits = rs.MaxCircuits
	rc.BufferSize = rs.BufferSize
	rc.Limit = nil
	if rs.ConnectionDuration > 0 {
		rc.Limit = &relayv2.RelayLimit{
			Duration: rs.ConnectionDuration,
			Data:     rs.ConnectionDataBytes,
		}
	}
	return &relayService{h: h, log: log, opts: []relayv2.Option{
		relayv2.WithResources(rc),
		relayv2.WithMetricsTracer(relayTracer{st}),
	}}
}

// update starts the relay when public turns true and stops it when it
// turns false.
func (r *relayService) update(public bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
	case public && r.relay == nil:
		relay, err := relayv2.New(r.h, r.opts...)
		if err != nil {
			r.log.Error("start relay service", "err", err)
			return
		}
		r.relay = relay
		r.log.Info("relay service started: this node is public")
	case !public && r.relay != nil:
		r.relay.Close()
		r.relay = nil
		r.log.Info("relay service stopped: this node is no longer public")
	}
}

func (r *relayService) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.relay != nil {
		r.relay.Close()
		r.relay = nil
	}
}

// relayTracer counts what the relay service does.
type relayTracer struct{ st *natState }

var _ relayv2.MetricsTracer = relayTracer{}

func (t relayTracer) RelayStatus(enabled bool)           { t.st.relayActive.Store(enabled) }
func (t relayTracer) ConnectionOpened()                  { t.st.circuits.Add(1) }
func (relayTracer) ConnectionClosed(time.Duration)       {}
func (relayTracer) ConnectionRequestHandled(pbv2.Status) {}
func (t relayTracer) ReservationAllowed(isRenewal bool) {
	if !isRenewal {
		t.st.served.Add(1)
	}
}
func (relayTracer) ReservationClosed(int)                 {}
func (relayTracer) ReservationRequestHandled(pbv2.Status) {}
func (t relayTracer) BytesTransferred(n int)              { t.st.relayedBytes.Add(uint64(n)) }
