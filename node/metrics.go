package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's own Prometheus metrics. Each node has its own
// registry (simnet runs many nodes in one process); /metrics serves it
// together with the process's default collectors (Go runtime, process).
type metrics struct {
	reg        *prometheus.Registry
	executions *prometheus.CounterVec
}

func (n *Node) newMetrics() {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.executions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "synapse_executions_total",
		Help: "Execution-log entries run by this node's executor, by outcome (success, failure: deterministic, state unchanged; transient: retried).",
	}, []string{"outcome"})
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
		m.executions,
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
		gauge("synapse_executor_paused", "1 while a local rollback pauses the executor.", func() float64 {
			return b2f(n.upgrades.Status().Paused)
		}),
		gauge("synapse_gossip_ops", "Signed operations in this node's op set.", func() float64 {
			return float64(n.gossip.OpCount())
		}),
		gauge("synapse_raft_leader", "1 while this node is the validators' raft leader.", func() float64 {
			return b2f(n.raft.IsLeader())
		}),
		gauge("synapse_peers", "Connected peers.", func() float64 {
			return float64(len(n.host.Network().Peers()))
		}),
	)
	n.metrics = m
}

// metricsHandler serves the node's registry and the process's default one.
func (n *Node) metricsHandler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, n.metrics.reg}, promhttp.HandlerOpts{})
}
