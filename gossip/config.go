package gossip

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the gossip service. Start from DefaultConfig. The fields
// tagged json:"-" are not in config.json (the node keeps their defaults).
type Config struct {
	// SyncInterval is how often the node syncs with one random peer.
	SyncInterval time.Duration `json:"sync_interval"`
	// OrphanMax bounds the ops held while their deps are fetched.
	OrphanMax int `json:"orphan_max"`
	// OrphanTTL is how long an orphan is held before it is dropped.
	OrphanTTL time.Duration `json:"orphan_ttl"`
	// SyncTimeout bounds one whole sync session.
	SyncTimeout time.Duration `json:"sync_timeout"`
	// MaxSyncSessions caps concurrent inbound sync sessions (one per peer).
	MaxSyncSessions int `json:"max_sync_sessions"`
	// MaxNonMemberSyncSessions caps the inbound sessions of peers that are
	// neither validators nor keys of the reputation map (0..MaxSyncSessions);
	// the other slots are kept for members, and a member evicts the oldest
	// non-member session when every slot is taken.
	MaxNonMemberSyncSessions int `json:"max_non_member_sync_sessions"`
	// MaxOpsPerReply caps the ops in one sync reply (also capped at 1 MiB).
	MaxOpsPerReply int `json:"-"`
	// RejectCacheSize bounds the cache of authentic but invalid ops (by
	// hash of their wire bytes) that sync does not validate again.
	RejectCacheSize int `json:"-"`
	// EventBuffer is the channel capacity of each subscriber.
	EventBuffer int `json:"-"`
}

// DefaultConfig: sync every 2 minutes, 1024 orphans for 10 minutes,
// 8 inbound sessions of which at most 4 for non-members, 256 ops per
// reply, 4096 rejected ops remembered.
func DefaultConfig() Config {
	return Config{
		SyncInterval:             2 * time.Minute,
		OrphanMax:                1024,
		OrphanTTL:                10 * time.Minute,
		SyncTimeout:              time.Minute,
		MaxSyncSessions:          8,
		MaxNonMemberSyncSessions: 4,
		MaxOpsPerReply:           256,
		RejectCacheSize:          4096,
		EventBuffer:              64,
	}
}

// ErrInvalidConfig wraps every configuration and dependency error of New.
var ErrInvalidConfig = errors.New("gossip: invalid config")

// Validate checks every bound is positive.
func (c Config) Validate() error {
	switch {
	case c.SyncInterval <= 0:
		return fmt.Errorf("%w: sync_interval must be positive", ErrInvalidConfig)
	case c.OrphanMax <= 0:
		return fmt.Errorf("%w: orphan_max must be positive", ErrInvalidConfig)
	case c.OrphanTTL <= 0:
		return fmt.Errorf("%w: orphan_ttl must be positive", ErrInvalidConfig)
	case c.SyncTimeout <= 0:
		return fmt.Errorf("%w: sync_timeout must be positive", ErrInvalidConfig)
	case c.MaxSyncSessions <= 0:
		return fmt.Errorf("%w: max_sync_sessions must be positive", ErrInvalidConfig)
	case c.MaxNonMemberSyncSessions < 0 || c.MaxNonMemberSyncSessions > c.MaxSyncSessions:
		return fmt.Errorf("%w: max_non_member_sync_sessions must be 0..max_sync_sessions", ErrInvalidConfig)
	case c.MaxOpsPerReply <= 0 || c.MaxOpsPerReply > maxOpsPerReplyCap:
		return fmt.Errorf("%w: max_ops_per_reply must be 1..%d", ErrInvalidConfig, maxOpsPerReplyCap)
	case c.RejectCacheSize <= 0:
		return fmt.Errorf("%w: reject_cache_size must be positive", ErrInvalidConfig)
	case c.EventBuffer <= 0:
		return fmt.Errorf("%w: event_buffer must be positive", ErrInvalidConfig)
	}
	return nil
}
