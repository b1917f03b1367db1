package upgrade

import (
	"context"
	"encoding/json"
	"os"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func toolRequest(cfg Config, op, wasmPath string, lim limits) (Config, childRequest) {
	cfg = cfg.withDefaults()
	req := childRequest{Op: op, WasmPath: wasmPath, Limits: lim}
	req.CacheDir = cfg.CompilationCacheDir
	return cfg, req
}

// Inspect describes the package module at wasmPath: ABI, imports, exports,
// memory declaration, and what get_upgrade_info (or argv "info") returns
// (with its version, description and breaking flag), in the sandbox of
// cfg (CompilationCacheDir or DataDir, when set, supplies the compilation
// cache) with the network's default limits, lowered to cfg's caps. A
// module that the executor would reject returns the error and what could
// be read.
func Inspect(ctx context.Context, cfg Config, wasmPath string) (ModuleInfo, error) {
	c := cfg.withDefaults()
	def := genesis.Limits{}.WithDefaults()
	lim := limits{MemoryLimitBytes: min(uint64(def.MemoryPages)*pageSize, c.MemoryLimitBytes),
		MaxOutputBytes: min(def.MaxOutputBytes, c.MaxOutputBytes), Fuel: def.Fuel}
	cfg, req := toolRequest(cfg, "info", wasmPath, lim)
	_, info, _, err := runCall(ctx, cfg.Isolation, req, nil, cfg.Timeout)
	if b, rerr := os.ReadFile(wasmPath); rerr == nil {
		if mem, merr := wasmMemory(b); merr == nil {
			info.Memory = mem
		}
	}
	var declared struct {
		Version     string `json:"version"`
		Description string `json:"description"`
		Breaking    bool   `json:"breaking"`
	}
	if len(info.UpgradeInfo) > 0 && json.Unmarshal(info.UpgradeInfo, &declared) == nil {
		info.Version, info.Description, info.Breaking = declared.Version, declared.Description, declared.Breaking
	}
	return info, err
}

// RunResult is the outcome of Run.
type RunResult struct {
	// Output is the new state in canonical JSON.
	Output []byte `json:"-"`
	// FuelUsed is the fuel the package used (also set when it failed
	// after running, e.g. fuel_exhausted).
	FuelUsed uint64 `json:"fuel_used"`
	// Limits are the limits applied: the input state's
	// global.governance.limits, or the defaults when it has none.
	Limits genesis.Limits `json:"limits"`
}

// Run runs the package at wasmPath on state (the authoring loop of
// `synapse-p2p wasm run`) with the limits the executor would use on that
// state — its global.governance.limits, or the network defaults when the
// state has no readable governance — checked against cfg's caps like
// Execute. The output must be a JSON object; the version and governance
// checks of Execute need an entry and are left to the caller (see
// ValidateOutput).
func Run(ctx context.Context, cfg Config, wasmPath string, state []byte) (RunResult, error) {
	netLim, err := networkLimits(state)
	if err != nil {
		netLim = genesis.Limits{}.WithDefaults()
	}
	res := RunResult{Limits: netLim}
	if _, _, err := canonicalState(state); err != nil {
		return res, pkgErr(ClassInvalidOutput, "input state: %v", err)
	}
	lim, err := sandboxLimits(cfg.withDefaults(), netLim)
	if err != nil {
		return res, err
	}
	cfg, req := toolRequest(cfg, "upgrade", wasmPath, lim)
	out, _, tm, err := runCall(ctx, cfg.Isolation, req, state, cfg.Timeout)
	res.FuelUsed = tm.FuelUsed
	if err != nil {
		return res, err
	}
	canon, _, err := canonicalState(out)
	if err != nil {
		return res, pkgErr(ClassInvalidOutput, "output is not a JSON object: %v (starts %q)", err, truncate(out, 64))
	}
	res.Output = canon
	return res, nil
}

// ValidateOutput applies Execute's output checks: a JSON object whose
// global.version is version and from which governance rules can be read.
// It returns the canonical output and its hash.
func ValidateOutput(out []byte, version string) ([]byte, string, error) {
	return validateOutput(out, version)
}
