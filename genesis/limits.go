package genesis

import (
	"fmt"
	"math"
)

// DefaultFinalityThreshold is the share of validators whose signatures make
// an entry final when the state does not say otherwise: more than 2/3.
const DefaultFinalityThreshold = 2.0 / 3.0

// Threshold is the effective finality threshold (DefaultFinalityThreshold
// when unset).
func (g Governance) Threshold() float64 {
	if g.FinalityThreshold == 0 {
		return DefaultFinalityThreshold
	}
	return g.FinalityThreshold
}

// FinalityNeeded is how many distinct validators of a set of n must sign an
// entry for it to be final: the smallest k with k > t·n, for the effective
// threshold t. For t = 2/3: n=1 → 1, 3 → 3, 4 → 3, 7 → 5.
//
// The product is rounded to 1e-9 before the floor so that 2/3·3, which is
// not exact in binary, counts as 2; every node computes the same integer.
// The rounding can only raise k, never below what safety needs; since the
// threshold is below 1 the exact k is at most n, so the result is capped
// at n (a threshold such as 0.9999999999 would otherwise ask n+1 of n
// validators, and no entry could ever become final).
func (g Governance) FinalityNeeded(n int) int {
	if n <= 0 {
		return 1
	}
	x := float64(g.Threshold()) * float64(n)
	return min(int(math.Floor(x+1e-9))+1, n)
}

// MaxFaulty is the number of byzantine validators f = ⌊(n−1)/3⌋ that a set
// of n tolerates under the default threshold.
func MaxFaulty(n int) int {
	if n <= 0 {
		return 0
	}
	return (n - 1) / 3
}

// Limits bound what an upgrade package may use. They are part of the
// network state (global.governance.limits), so every node decides an
// upgrade's outcome with the same numbers. Zero fields mean the defaults.
type Limits struct {
	// MaxPackageBytes caps package_size: proposals above it are refused.
	MaxPackageBytes int64 `json:"max_package_bytes,omitempty"`
	// MemoryPages caps the guest's linear memory in 64 KiB wasm pages.
	MemoryPages uint32 `json:"memory_pages,omitempty"`
	// MaxOutputBytes caps the new state a package may return.
	MaxOutputBytes int64 `json:"max_output_bytes,omitempty"`
	// Fuel is the deterministic instruction budget of one package run
	// (start function, _initialize, alloc and upgrade together): the
	// metered cost of the instructions the guest runs, about one unit per
	// wasm instruction plus size-based charges for bulk memory operations
	// (docs/sandbox.md). A guest that runs out fails with fuel_exhausted
	// on every node alike.
	Fuel uint64 `json:"fuel,omitempty"`
}

// Default execution limits.
//
// DefaultFuel is about 20× what the reference package add-feature-flag
// uses on a 1 MiB state (3.27·10⁹; 2.8·10⁶ on the 3-node devnet genesis
// state, 4.6·10¹⁰ on a 10 MiB state), measured with BenchmarkMeter
// (command and figures in docs/sandbox.md): room for packages that do far
// more work per byte than a flag flip, while an endless loop fails in
// about 10-30 s of guest time on a current core, well inside the
// executor's default wall-clock safety net (5 min).
const (
	DefaultMaxPackageBytes = 64 << 20
	DefaultMemoryPages     = 4096 // 256 MiB
	DefaultMaxOutputBytes  = 64 << 20
	DefaultFuel            = 65_000_000_000
)

// WithDefaults fills zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxPackageBytes == 0 {
		l.MaxPackageBytes = DefaultMaxPackageBytes
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = DefaultMemoryPages
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if l.Fuel == 0 {
		l.Fuel = DefaultFuel
	}
	return l
}

// Validate checks that no limit is negative and memory fits wasm32.
func (l Limits) Validate() error {
	switch {
	case l.MaxPackageBytes < 0:
		return fmt.Errorf("%w: limits.max_package_bytes %d is negative", ErrBadGovernance, l.MaxPackageBytes)
	case l.MaxOutputBytes < 0:
		return fmt.Errorf("%w: limits.max_output_bytes %d is negative", ErrBadGovernance, l.MaxOutputBytes)
	case l.MemoryPages > 65536:
		return fmt.Errorf("%w: limits.memory_pages %d exceeds 65536 (4 GiB, wasm32)", ErrBadGovernance, l.MemoryPages)
	}
	return nil
}
