package upgrade

import "context"

func toolRequest(cfg Config, op, wasmPath string) (Config, childRequest) {
	cfg = cfg.withDefaults()
	req := childRequest{Op: op, WasmPath: wasmPath,
		Limits: limits{MemoryLimitBytes: cfg.MemoryLimitBytes, MaxOutputBytes: cfg.MaxOutputBytes}}
	req.CacheDir = cfg.CompilationCacheDir
	return cfg, req
}

// Inspect describes the package module at wasmPath: ABI, imports, exports
// and what get_upgrade_info (or argv "info") returns, in the sandbox of
// cfg (CompilationCacheDir or DataDir, when set, supplies the compilation cache). A module that
// the executor would reject returns the error and what could be read.
func Inspect(ctx context.Context, cfg Config, wasmPath string) (ModuleInfo, error) {
	cfg, req := toolRequest(cfg, "info", wasmPath)
	_, info, _, err := runCall(ctx, cfg.Isolation, req, nil, cfg.Timeout)
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
	out, _, _, err := runCall(ctx, cfg.Isolation, req, state, cfg.Timeout)
	if err != nil {
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
