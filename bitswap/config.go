package bitswap

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	defaultReprovideInterval   = 12 * time.Hour
	DefaultProviderSearchDelay = 50 * time.Millisecond
	DefaultMaxFetchBytes       = 64 << 20
	// DefaultServeWorkers and DefaultValidatorServeWorkers: boxo starts 8
	// + 8 + 128 serving goroutines per node, sized for an IPFS gateway; a
	// governance node serves one package now and then.
	DefaultServeWorkers          = 4
	DefaultValidatorServeWorkers = 2
	// DefaultValidatorServeRate: 8 MiB/s (64 Mbit/s) leaves a validator's
	// uplink and CPU to its raft heartbeats and duties while it serves.
	DefaultValidatorServeRate = 8 << 20
)

// Config tunes the content store. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// ReprovideInterval is how often every kept package root is announced
	// on the DHT again. Provider records on kad-dht expire after 48 h.
	ReprovideInterval time.Duration `json:"reprovide_interval"`
	// ProviderSearchDelay is how long a bitswap session waits for connected
	// peers to answer before it asks the DHT for providers. boxo's default
	// is 1 s, which dominates small fetches; it must be positive (a zero
	// delay makes a session rebroadcast in a tight loop).
	ProviderSearchDelay time.Duration `json:"provider_search_delay"`
	// MaxFetchBytes caps the size of a fetched package unless a fetch sets
	// its own cap with WithMaxSize.
	MaxFetchBytes int64 `json:"max_fetch_bytes"`
	// ServeWorkers is how many goroutines prepare and send blocks to other
	// nodes (boxo's task and engine workers; twice as many look blocks up
	// in the store). ValidatorServeWorkers replaces it on a node that is a
	// validator when it starts (node/ chooses).
	ServeWorkers          int `json:"serve_workers"`
	ValidatorServeWorkers int `json:"validator_serve_workers"`
	// ServeRate caps the bytes per second bitswap sends to other nodes (0:
	// no cap). ValidatorServeRate replaces it while the node is a
	// validator (node/ switches as the validator set changes), so a
	// validator serving a popular package keeps its raft heartbeats and
	// duties on time; the swarm fetches from the nodes that already hold
	// blocks.
	ServeRate          int64 `json:"serve_rate"`
	ValidatorServeRate int64 `json:"validator_serve_rate"`

	// boxoDefaults turns off this package's tuning (small blocks sent in
	// reply to want-have, prefetching, eager provider dials) so benchmarks
	// can compare against plain boxo.
	boxoDefaults bool
}

// DefaultConfig reprovides every 12 h, searches for providers after 50 ms,
// caps fetches at 64 MiB, serves with 4 workers (2 on a validator) and
// limits a validator's serving to 8 MiB/s.
func DefaultConfig() Config {
	return Config{
		ReprovideInterval:     defaultReprovideInterval,
		ProviderSearchDelay:   DefaultProviderSearchDelay,
		MaxFetchBytes:         DefaultMaxFetchBytes,
		ServeWorkers:          DefaultServeWorkers,
		ValidatorServeWorkers: DefaultValidatorServeWorkers,
		ValidatorServeRate:    DefaultValidatorServeRate,
	}
}

// ErrInvalidConfig wraps every configuration and dependency error of New.
var ErrInvalidConfig = errors.New("bitswap: invalid config")

// Validate checks that every duration and the size cap are positive.
func (c Config) Validate() error {
	if c.ReprovideInterval < time.Minute {
		return fmt.Errorf("%w: reprovide_interval %s (want at least 1m)", ErrInvalidConfig, c.ReprovideInterval)
	}
	if c.ProviderSearchDelay <= 0 {
		return fmt.Errorf("%w: provider_search_delay %s (want > 0)", ErrInvalidConfig, c.ProviderSearchDelay)
	}
	if c.MaxFetchBytes <= 0 {
		return fmt.Errorf("%w: max_fetch_bytes %d (want > 0)", ErrInvalidConfig, c.MaxFetchBytes)
	}
	if c.ServeWorkers < 1 || c.ValidatorServeWorkers < 1 {
		return fmt.Errorf("%w: serve_workers %d, validator_serve_workers %d (want ≥ 1)", ErrInvalidConfig, c.ServeWorkers, c.ValidatorServeWorkers)
	}
	if c.ServeRate < 0 || c.ValidatorServeRate < 0 {
		return fmt.Errorf("%w: serve_rate %d, validator_serve_rate %d (want ≥ 0, 0 = no cap)", ErrInvalidConfig, c.ServeRate, c.ValidatorServeRate)
	}
	if r := min(nonZero(c.ServeRate), nonZero(c.ValidatorServeRate)); r < minServeRate {
		return fmt.Errorf("%w: a serve rate of %d B/s is below %d B/s (a 256 KiB block would take minutes)", ErrInvalidConfig, r, minServeRate)
	}
	return nil
}

// minServeRate is the lowest non-zero serve rate Validate accepts (64 KiB/s).
const minServeRate = 64 << 10

// nonZero maps 0 (no cap) to the largest rate, for comparisons.
func nonZero(r int64) int64 {
	if r == 0 {
		return 1<<63 - 1
	}
	return r
}
