package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// metrics are the node's own Prometheus metrics. Each node has its own
// registry (simnet runs many nodes in one process); /metrics serves it
// together with the process's default collectors (Go runtime, process).
type metrics struct {
	reg        *prometheus.Registry
	executions *prometheus.CounterVec
	conflict   prometheus.Gauge
	stuckSeq   prometheus.Gauge
}

func (n *Node) newMetrics() {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.executions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "synapse_executions_total",
		Help: "Execution-log entries run by this node's executor, by outcome (success; failure: deterministic, state unchanged; void: skipped by the validators; transient: retried).",
	}, []string{"outcome"})
	m.conflict = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "synapse_execution_log_conflict",
		Help: "1 when a different entry became final at a seq this node executed: the executor halted (needs more than f byzantine validators).",
	})
	m.stuckSeq = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "synapse_executor_stuck_seq",
		Help: "Seq of the entry the executor keeps failing on transiently (0 when none).",
	})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.reg.MustRegister(
		m.executions, m.conflict, m.stuckSeq,
		gauge("synapse_executor_stuck_seconds", "How long the executor has been failing transiently on one entry (0 when not).", func() float64 {
			if s, ok := n.StuckEntry(); ok {
				return time.Since(s.Since).Seconds()
			}
			return 0
		}),
		gauge("synapse_validator_equivocations", "Validators this node holds two signatures from at one seq (evidence; they count toward no entry there).", func() float64 {
			return float64(len(n.gossip.Equivocations()))
		}),
		gauge("synapse_raft_banned_leaders", "Validators this node stopped following as raft leader (stalled log or unordered approved proposals).", func() float64 {
			return float64(len(n.raft.Banned()))
		}),
		gauge("synapse_last_executed_seq", "Seq of the last execution-log entry this node executed.", func() float64 {
			return float64(n.upgrades.LastExecutedSeq())
		}),
		gauge("synapse_final_seq", "Seq of the last final execution-log entry this node knows.", func() float64 {
			log := n.gossip.ExecutionLog()
			if len(log) == 0 {
				return 0
			}
			return float64(log[len(log)-1].Seq)
		}),
		gauge("synapse_executor_paused", "1 while the executor is paused (a local rollback, or a halt on a conflicting log).", func() float64 {
			return b2f(n.upgrades.Status().Paused)
		}),
		gauge("synapse_gossip_ops", "Signed operations in this node's op set.", func() float64 {
			return float64(n.gossip.OpCount())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "synapse_gossip_dropped_rpcs_total",
			Help: "Outbound GossipSub RPCs dropped because a peer's send queue was full (lazy gossip or the op-set sync repairs them, later).",
		}, func() float64 { return float64(n.gossip.Drops().RPCs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "synapse_gossip_dropped_validation_total",
			Help: "Incoming GossipSub messages dropped before validation because the validation queue was full.",
		}, func() float64 { return float64(n.gossip.Drops().Validation) }),
		gauge("synapse_raft_leader", "1 while this node is the validators' raft leader.", func() float64 {
			return b2f(n.raft.IsLeader())
		}),
		gauge("synapse_peers", "Connected peers.", func() float64 {
			return float64(len(n.host.Network().Peers()))
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "synapse_rendezvous_lookups_total",
			Help: "DHT lookups of the network's rendezvous key; they run only while the node has fewer peers than p2p.conn_low.",
		}, func() float64 { return float64(n.host.RendezvousLookups()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "synapse_raft_leader_changes_total",
			Help: "Times this validator saw the raft leader change to another validator (the first leader included); elections after lost heartbeats make it climb.",
		}, func() float64 { return float64(n.raft.LeaderChanges()) }),
		gauge("synapse_raft_heartbeat_lag_seconds", "On a raft follower, seconds since it last heard from the leader (an election starts past raft.heartbeat_timeout); 0 on the leader and on non-validators.", func() float64 {
			return n.raft.HeartbeatLag().Seconds()
		}),
		gauge("synapse_raft_term", "Current raft term (0 when this node runs no raft); every election raises it.", func() float64 {
			return float64(n.raft.Term())
		}),
	)
	n.registerNATMetrics(m.reg)
	n.metrics = m
}

// registerNATMetrics adds the host's reachability, relay and hole-punch
// figures (p2p.Host.NATStatus and NATStats) to reg.
func (n *Node) registerNATMetrics(reg *prometheus.Registry) {
	counter := func(name, help string, f func(p2p.NATStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			return float64(f(n.host.NATStats()))
		})
	}
	reg.MustRegister(
		counter("synapse_holepunch_attempts_total", "DCUtR hole-punch attempts (each retry; as initiator or answering side).",
			func(s p2p.NATStats) uint64 { return s.HolePunchAttempts }),
		counter("synapse_holepunch_successes_total", "Hole-punch attempts that produced a direct connection.",
			func(s p2p.NATStats) uint64 { return s.HolePunchSuccesses }),
		counter("synapse_holepunch_failures_total", "Hole-punch attempts that did not.",
			func(s p2p.NATStats) uint64 { return s.HolePunchFailures }),
		counter("synapse_holepunch_direct_dials_total", "Peers first reached through a relay that this node then dialled directly, before any hole punch.",
			func(s p2p.NATStats) uint64 { return s.DirectDials }),
		counter("synapse_relay_reservations_total", "Reservations this node obtained at relays (new relays, not refreshes).",
			func(s p2p.NATStats) uint64 { return s.RelayReservations }),
		counter("synapse_relay_service_reservations_total", "Reservations this node granted as a relay (not refreshes).",
			func(s p2p.NATStats) uint64 { return s.RelayServiceReservations }),
		counter("synapse_relay_service_circuits_total", "Relayed connections this node carried for others.",
			func(s p2p.NATStats) uint64 { return s.RelayServiceCircuits }),
		counter("synapse_relay_service_bytes_total", "Bytes this node relayed for others.",
			func(s p2p.NATStats) uint64 { return s.RelayServiceBytes }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "synapse_relay_reservations", Help: "Relays this node holds a reservation at."}, func() float64 {
			return float64(len(n.host.NATStatus().Relays))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "synapse_relay_service_active", Help: "1 while this node relays for others (relay service on and the node public)."}, func() float64 {
			if n.host.NATStatus().RelayService {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "synapse_relayed_peers", Help: "Connected peers reached only through a relay."}, func() float64 {
			k := 0
			for _, pc := range n.host.PeerConns() {
				if !pc.Direct() {
					k++
				}
			}
			return float64(k)
		}),
	)
	for _, r := range []string{p2p.ReachabilityPublic, p2p.ReachabilityPrivate, p2p.ReachabilityUnknown} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "synapse_reachability",
			Help:        "1 for the node's current reachability (AutoNAT, or p2p.reachability), 0 for the others.",
			ConstLabels: prometheus.Labels{"reachability": r},
		}, func() float64 {
			if n.host.NATStatus().Reachability == r {
				return 1
			}
			return 0
		}))
	}
}

// metricsHandler serves the node's registry and the process's default one.
func (n *Node) metricsHandler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, n.metrics.reg}, promhttp.HandlerOpts{})
}
