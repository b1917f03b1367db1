package upgrade

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	// ErrTransient marks failures that say nothing about the package: the
	// network, a cancelled context, a node shutting down. Nothing was
	// changed; retry later.
	ErrTransient = errors.New("upgrade: transient failure")
	// ErrPaused is returned by Execute after a local Rollback until Resume.
	ErrPaused = errors.New("upgrade: executor paused after a rollback (resume to continue)")
	// ErrSeqGap is returned by Execute when an entry skips a seq.
	ErrSeqGap = errors.New("upgrade: entry out of order")
	// ErrNoState is returned when no network state was installed (InitState).
	ErrNoState = errors.New("upgrade: no network state (InitState not called)")
	// ErrNotFound is returned by Rollback for an unknown or failed proposal.
	ErrNotFound = errors.New("upgrade: no successful upgrade with that proposal id")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("upgrade: manager closed")
	// ErrIPFSNotConfigured is returned for ipfs:// URLs when Deps.IPFSFetch is nil.
	ErrIPFSNotConfigured = errors.New("upgrade: ipfs fetching not configured")
	// ErrLocalCap is returned (with ErrTransient) when a limit of the
	// network state exceeds this node's safety cap in Config: the node
	// cannot reproduce the network's outcome until the operator raises
	// the cap the message names.
	ErrLocalCap = errors.New("upgrade: a network limit exceeds this node's cap")
)

// Error classes of deterministic failures (Result.ErrorClass). Every node
// fails the same entry with the same class: each depends only on the
// verified package bytes, the state and the limits in that state
// (global.governance.limits).
const (
	ClassBadPackage    = "bad_package"        // malformed hash, version or URL
	ClassHashMismatch  = "hash_mismatch"      // content does not match package_hash
	ClassSizeLimit     = "size_limit"         // package larger than package_size or the network's max_package_bytes
	ClassBadModule     = "bad_module"         // not wasm, forbidden import, missing exports, refused by the fuel meter
	ClassTrap          = "trap"               // the guest trapped, panicked or exited non-zero
	ClassFuelExhausted = "fuel_exhausted"     // the guest used up the network's fuel budget
	ClassMemoryLimit   = "memory_limit"       // the guest hit the network's memory_pages
	ClassOutputLimit   = "output_limit"       // output larger than the network's max_output_bytes
	ClassInvalidOutput = "invalid_output"     // output not a JSON object, wrong version, broken rules
	ClassVersion       = "version_not_raised" // the entry does not raise the version
)

// ClassTimeout was the class of a guest stopped by the wall-clock
// deadline. The deadline is now only a safety net whose expiry is
// transient (it depends on the machine), so no failure gets this class any
// more; it stays so that history files written before keep their meaning.
const ClassTimeout = "timeout"

// PackageError is a deterministic failure of a package: it fails the same
// way on every node. Stdout and Stderr hold the guest's (bounded) output.
type PackageError struct {
	Class  string
	Msg    string
	Stdout string
	Stderr string
}

func (e *PackageError) Error() string {
	s := fmt.Sprintf("upgrade: %s: %s", e.Class, e.Msg)
	if e.Stderr != "" {
		s += "; guest stderr: " + e.Stderr
	}
	if e.Stdout != "" {
		s += "; guest stdout: " + e.Stdout
	}
	return s
}

func pkgErr(class, format string, a ...any) *PackageError {
	return &PackageError{Class: class, Msg: fmt.Sprintf(format, a...)}
}

func transient(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrTransient, fmt.Sprintf(format, a...))
}

// ClassOf returns the class of a deterministic failure, or "" for other errors.
func ClassOf(err error) string {
	var pe *PackageError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
