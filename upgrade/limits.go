package upgrade

import (
	"fmt"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// networkLimits reads the execution limits from a network state
// (global.governance.limits, defaults for unset fields). Every node
// decides an entry with the limits of the state the entry runs on.
func networkLimits(state []byte) (genesis.Limits, error) {
	rules, err := genesis.RulesFromState(state)
	if err != nil {
		return genesis.Limits{}, fmt.Errorf("upgrade: limits of the current state: %w", err)
	}
	return rules.Governance.Limits.WithDefaults(), nil
}

// capErr is the transient error of a network limit above a node's cap.
func capErr(limit string, network int64, field string, cap int64) error {
	return fmt.Errorf("%w: %w: the network state's limits.%s is %d bytes but this node's upgrade %s cap is %d bytes: "+
		"raise %s in the node config to at least %d (the node cannot reproduce the network's outcome below it)",
		errTransient, errLocalCap, limit, network, field, cap, field, network)
}

// sandboxLimits turns the network's limits into the sandbox's, after
// checking them against the node's safety caps: a guest could observe a
// smaller memory or output limit, so running under a cap below the
// network's limit could give an outcome other nodes do not reproduce.
// Such a call fails transiently (errLocalCap) instead.
func sandboxLimits(cfg Config, lim genesis.Limits) (limits, error) {
	mem := uint64(lim.MemoryPages) * pageSize
	if mem > cfg.MemoryLimitBytes {
		return limits{}, capErr("memory_pages", int64(mem), "memory_limit_bytes", int64(cfg.MemoryLimitBytes))
	}
	if lim.MaxOutputBytes > cfg.MaxOutputBytes {
		return limits{}, capErr("max_output_bytes", lim.MaxOutputBytes, "max_output_bytes", cfg.MaxOutputBytes)
	}
	return limits{MemoryLimitBytes: mem, MaxOutputBytes: lim.MaxOutputBytes, Fuel: lim.Fuel}, nil
}

// packageCap checks a package that passed the network's
// max_package_bytes (Package.check) against the node's download cap
// (transient: errLocalCap). A package without a declared size needs the
// whole network limit.
func packageCap(cfg Config, lim genesis.Limits, p Package) error {
	need := p.Size
	if need <= 0 {
		need = lim.MaxPackageBytes
	}
	if need > cfg.MaxPackageBytes {
		return capErr("max_package_bytes", need, "max_package_bytes", cfg.MaxPackageBytes)
	}
	return nil
}
