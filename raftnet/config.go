package raftnet

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig wraps every configuration error of this package.
var ErrInvalidConfig = errors.New("raftnet: invalid config")

// Config configures the validator consensus.
type Config struct {
	// Dir holds the raft state: <Dir>/wal (log + stable store),
	// <Dir>/snapshots. Normally <data>/raft. The node
	// sets it and NetworkID (omitted from config.json, ignored there).
	Dir string `json:"dir,omitempty"`
	// NetworkID names the raft protocol /synapse/<netID>/raft/1.
	NetworkID string `json:"network_id,omitempty"`

	HeartbeatTimeout   time.Duration `json:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `json:"election_timeout"`
	LeaderLeaseTimeout time.Duration `json:"leader_lease_timeout"`
	CommitTimeout      time.Duration `json:"commit_timeout"`
	// ApplyTimeout bounds one Ratify or membership change on the leader.
	ApplyTimeout time.Duration `json:"apply_timeout"`
	// PollInterval is how often the service re-reads the validator set and
	// the leader re-reads Governance.Approved without a Changed nudge.
	PollInterval time.Duration `json:"poll_interval"`
	// RetryMin and RetryMax bound the backoff of failed raft operations.
	RetryMin time.Duration `json:"retry_min"`
	RetryMax time.Duration `json:"retry_max"`
	// StallTimeout is how long the next seq may have a slot without
	// becoming final before the leader voids it (when no entry there has a
	// quorum of attests). Liveness only: voiding is safe at any time.
	StallTimeout time.Duration `json:"stall_timeout"`
	// LeaderGrace is how much longer than StallTimeout a follower waits,
	// with a stalled seq or an approved proposal left without a slot,
	// before it suspects the leader and bans it for BanDuration (it stops
	// exchanging raft traffic with it, so the others elect a new leader).
	LeaderGrace time.Duration `json:"leader_grace"`
	BanDuration time.Duration `json:"ban_duration"`
	// SnapshotThreshold is how many log entries trigger a snapshot, checked
	// every SnapshotInterval; TrailingLogs how many entries stay in the log
	// after one; SnapshotRetain how many snapshots are kept.
	SnapshotThreshold uint64        `json:"snapshot_threshold"`
	SnapshotInterval  time.Duration `json:"snapshot_interval"`
	TrailingLogs      uint64        `json:"trailing_logs"`
	SnapshotRetain    int           `json:"snapshot_retain"`
	// RaftLogLevel is hashicorp/raft's own log level (hclog names).
	RaftLogLevel string `json:"raft_log_level"`
}

// DefaultConfig suits validators spread over a WAN (one-way latencies up to
// ~150 ms, RTT ~300 ms) whose machines also serve packages and gossip: a
// follower starts an election only after 2–4 s without the leader
// (HeartbeatTimeout, randomised up to twice), and the leader steps down
// only when it has not heard from a quorum for 1 s (LeaderLeaseTimeout).
// The former LAN values (500/500/250 ms) lost the leader to an election
// storm while a validator served a package to 99 nodes on one machine
// (docs/benchmarks.md); elections only matter for liveness, so being slow to
// suspect a leader costs little. Each network sets its own in the raft
// section of config.json.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   2 * time.Second,
		ElectionTimeout:    2 * time.Second,
		LeaderLeaseTimeout: time.Second,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       10 * time.Second,
		PollInterval:       2 * time.Second,
		RetryMin:           200 * time.Millisecond,
		RetryMax:           30 * time.Second,
		StallTimeout:       30 * time.Second,
		LeaderGrace:        30 * time.Second,
		BanDuration:        5 * time.Minute,
		SnapshotThreshold:  1024,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       1024,
		SnapshotRetain:     2,
		RaftLogLevel:       "warn",
	}
}

// LANTimeouts reports whether c has the heartbeat, election and lease
// timeouts of config files written before the WAN defaults (500, 500 and
// 250 ms). A node keeps what its config.json says; with these a validator
// that serves a package to many peers, or shares its machine, loses its
// leader to elections (docs/benchmarks.md, "Raft under load").
func (c Config) LANTimeouts() bool {
	return c.HeartbeatTimeout == 500*time.Millisecond && c.ElectionTimeout == 500*time.Millisecond &&
		c.LeaderLeaseTimeout == 250*time.Millisecond
}

// Validate checks the config; raft's own constraints are checked again by
// raft.ValidateConfig when raft starts.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...)) }
	switch {
	case c.Dir == "":
		return bad("dir is empty")
	case c.NetworkID == "":
		return bad("network_id is empty")
	case c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond:
		return bad("heartbeat_timeout and election_timeout must be at least 5ms")
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return bad("leader_lease_timeout must be in (0, heartbeat_timeout]")
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return bad("election_timeout must be >= heartbeat_timeout")
	case c.CommitTimeout <= 0 || c.ApplyTimeout <= 0 || c.PollInterval <= 0:
		return bad("commit_timeout, apply_timeout and poll_interval must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return bad("retry_min and retry_max must satisfy 0 < retry_min <= retry_max")
	case c.StallTimeout <= 0 || c.LeaderGrace <= 0 || c.BanDuration <= 0:
		return bad("stall_timeout, leader_grace and ban_duration must be positive")
	case c.SnapshotThreshold == 0 || c.SnapshotRetain < 1:
		return bad("snapshot_threshold and snapshot_retain must be positive")
	case c.SnapshotInterval < 5*time.Millisecond:
		return bad("snapshot_interval must be at least 5ms")
	}
	return nil
}
