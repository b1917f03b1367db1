package upgrade

import (
	"context"
	"path/filepath"
)

func toolRequest(cfg Config, op, wasmPath string) (Config, childRequest) {
	cfg = cfg.withDefaults()
	req := childRequest{Op: op, WasmPath: wasmPath,
		Limits: limits{MemoryLimitBytes: cfg.MemoryLimitBytes, MaxOutputBytes: cfg.MaxOutputBytes}}
	if cfg.DataDir != "" {
		req.CacheDir = filepath.Join(cfg.DataDir, "upgrades", wasmCache)
	}
	return cfg, req
}

// Inspect describes the package module at wasmPath: ABI, imports, exports
// and what get_upgrade_info (or argv "info") returns, in the sandbox of
// cfg (DataDir, when set, supplies the compilation cache). A module that
// the executor would reject returns the error and what could be read.
func Inspect(ctx context.Context, cfg Config, wasmPath string) (ModuleInfo, error) {
	cfg, req := toolRequest(cfg, "info", wasmPath)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	_, info, _, err := runCall(ctx, cfg.Isolation, req, nil)
	return info, err
}

// Run runs the package at wasmPath on state with the sandbox limits of cfg
// (the authoring loop of `synapse-p2p wasm run`) and returns its output in
// canonical JSON. The output must be a JSON object; the version and
// governance checks of Execute need an entry and are left to the caller
// (see ValidateOutput).
func Run(ctx context.Context, cfg Config, wasmPath string, state []byte) ([]byte, error) {
	cfg, req := toolRequest(cfg, "upgrade", wasmPath)
	if _, _, err := canonicalState(state); err != nil {
		return nil, pkgErr(ClassInvalidOutput, "input state: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	out, _, _, err := runCall(rctx, cfg.Isolation, req, state)
	if err != nil {
		if ctx.Err() != nil {
			return nil, transient("%v", ctx.Err())
		}
		return nil, err
	}
	canon, _, err := canonicalState(out)
	if err != nil {
		return nil, pkgErr(ClassInvalidOutput, "output is not a JSON object: %v (starts %q)", err, truncate(out, 64))
	}
	return canon, nil
}

// ValidateOutput applies Execute's output checks: a JSON object whose
// global.version is version and from which governance rules can be read.
// It returns the canonical output and its hash.
func ValidateOutput(out []byte, version string) ([]byte, string, error) {
	return validateOutput(out, version)
}
