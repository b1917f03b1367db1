package bitswap

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultReprovideInterval   = 12 * time.Hour
	DefaultProviderSearchDelay = 50 * time.Millisecond
	DefaultMaxFetchBytes       = 64 << 20
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

	// boxoDefaults turns off this package's tuning (small blocks sent in
	// reply to want-have, prefetching, eager provider dials) so benchmarks
	// can compare against plain boxo.
	boxoDefaults bool
}

// DefaultConfig reprovides every 12 h, searches for providers after 50 ms
// and caps fetches at 64 MiB.
func DefaultConfig() Config {
	return Config{
		ReprovideInterval:   DefaultReprovideInterval,
		ProviderSearchDelay: DefaultProviderSearchDelay,
		MaxFetchBytes:       DefaultMaxFetchBytes,
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
	return nil
}
