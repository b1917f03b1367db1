package raftnet

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// leaderStats counts leader changes as this node's raft observes them; it
// outlives raft restarts (membership changes) so the count is per Service.
type leaderStats struct {
	changes atomic.Uint64
	last    atomic.Pointer[peer.ID] // the last non-empty leader seen
}

// observe records that raft reports leader p ("" while there is none). A
// change is a new non-empty leader other than the last one: the first
// leader after start counts once, a leader lost and regained does not.
func (l *leaderStats) observe(p peer.ID) {
	if p == "" {
		return
	}
	if prev := l.last.Swap(&p); prev == nil || *prev != p {
		l.changes.Add(1)
	}
}

// LeaderChanges is how many times this validator saw the raft leader
// change to a different validator since the Service started (the first
// leader included). A stable network sees 1 per validator; elections
// caused by lost heartbeats make it climb (metric
// synapse_raft_leader_changes_total). 0 on a node that never ran raft.
func (s *Service) LeaderChanges() uint64 { return s.leaders.changes.Load() }

// HeartbeatLag is, on a follower, how long ago it last heard from the
// leader (raft's LastContact; raft starts an election once it exceeds
// HeartbeatTimeout) — the lag of the leader's heartbeats. It is 0 on the
// leader and on a node that does not run raft (metric
// synapse_raft_heartbeat_lag_seconds).
func (s *Service) HeartbeatLag() time.Duration {
	n := s.current()
	if n == nil || n.isLeader() {
		return 0
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		last = n.started
	}
	return time.Since(last)
}

// Term is the current raft term (0 when raft does not run here). Every
// election raises it.
func (s *Service) Term() uint64 {
	n := s.current()
	if n == nil {
		return 0
	}
	return n.raft.CurrentTerm()
}
