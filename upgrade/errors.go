package upgrade

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	// errTransient marks failures that say nothing about the package: the
	// transfer (bytes that do not match package_hash or package_size, network
	// errors, download deadlines), a cancelled context, a node shutting down,
	// the machine. Nothing was changed; retry later, from other sources
	// (docs/upgrade.md, DESIGN §7).
	errTransient = errors.New("upgrade: transient failure")
	// ErrPaused is returned by Execute after a local Rollback until Resume.
	ErrPaused = errors.New("upgrade: executor paused after a rollback (resume to continue)")
	// errSeqGap is returned by Execute when an entry skips a seq.
	errSeqGap = errors.New("upgrade: entry out of order")
	// errNoState is returned when no network state was installed (InitState).
	errNoState = errors.New("upgrade: no network state (InitState not called)")
	// ErrNotFound is returned by Rollback for an unknown or failed proposal.
	ErrNotFound = errors.New("upgrade: no successful upgrade with that proposal id")
	// errClosed is returned after Close.
	errClosed = errors.New("upgrade: manager closed")
	// errIPFSNotConfigured is returned for ipfs:// URLs when Deps.IPFSFetch is nil.
	errIPFSNotConfigured = errors.New("upgrade: ipfs fetching not configured")

	// The errors below describe why one source of a package failed; they
	// are always wrapped in a transient error (a *fetchError), never a
	// deterministic failure: they depend on the transfer, not on the
	// verified package bytes.

	// errHashMismatch: the downloaded bytes do not hash to package_hash.
	errHashMismatch = errors.New("upgrade: downloaded bytes do not match package_hash")
	// errSizeMismatch: the download is shorter or longer than package_size
	// (or longer than MaxPackageBytes when package_size is unknown), by
	// Content-Length or by the bytes received.
	errSizeMismatch = errors.New("upgrade: wrong download size")
	// errDownloadDeadline: the overall download deadline
	// (DownloadBaseTimeout + size / DownloadMinRate) passed.
	errDownloadDeadline = errors.New("upgrade: download deadline passed")
	// errDownloadStalled: no byte arrived for DownloadIdleTimeout.
	errDownloadStalled = errors.New("upgrade: download stalled")
	// errRedirectRefused: an HTTP redirect was not followed: https to a
	// weaker scheme, a scheme other than http(s), or too many redirects.
	errRedirectRefused = errors.New("upgrade: redirect refused")
	// errLocalCap is returned (with errTransient) when a limit of the
	// network state exceeds this node's safety cap in Config: the node
	// cannot reproduce the network's outcome until the operator raises
	// the cap the message names.
	errLocalCap = errors.New("upgrade: a network limit exceeds this node's cap")
)

// Error classes of deterministic failures (Result.ErrorClass). Every node
// fails the same entry with the same class: each depends only on the
// entry, the verified package bytes, the state and the limits in that
// state (global.governance.limits) — never on the transfer (a download
// whose bytes do not match package_hash or package_size is transient:
// errHashMismatch, errSizeMismatch) or the machine.
const (
	ClassBadPackage    = "bad_package"        // malformed package_hash, version or package_url in the entry
	ClassSizeLimit     = "size_limit"         // package_size above the network's max_package_bytes
	ClassBadModule     = "bad_module"         // not wasm, forbidden import, missing exports, refused by the fuel meter
	ClassTrap          = "trap"               // the guest trapped, panicked or exited non-zero
	ClassFuelExhausted = "fuel_exhausted"     // the guest used up the network's fuel budget
	ClassMemoryLimit   = "memory_limit"       // the guest hit the network's memory_pages
	ClassOutputLimit   = "output_limit"       // output larger than the network's max_output_bytes
	ClassInvalidOutput = "invalid_output"     // output not a JSON object, wrong version, broken rules
	ClassVersion       = "version_not_raised" // the entry does not raise the version

	// ClassHashMismatch is no longer produced: downloaded bytes that do not
	// match package_hash are transient (errHashMismatch). It remains
	// because histories written before may hold it.
	//
	// Deprecated: not produced since downloads became transient.
	ClassHashMismatch = "hash_mismatch"
)

// classTimeout was the class of a guest stopped by the wall-clock
// deadline. The deadline is now only a safety net whose expiry is
// transient (it depends on the machine), so no failure gets this class any
// more; it stays so that history files written before keep their meaning.
const classTimeout = "timeout"

// packageError is a deterministic failure of a package: it fails the same
// way on every node. Stdout and Stderr hold the guest's (bounded) output.
type packageError struct {
	Class  string
	Msg    string
	Stdout string
	Stderr string
}

func (e *packageError) Error() string {
	s := fmt.Sprintf("upgrade: %s: %s", e.Class, e.Msg)
	if e.Stderr != "" {
		s += "; guest stderr: " + e.Stderr
	}
	if e.Stdout != "" {
		s += "; guest stdout: " + e.Stdout
	}
	return s
}

func pkgErr(class, format string, a ...any) *packageError {
	return &packageError{Class: class, Msg: fmt.Sprintf(format, a...)}
}

func transient(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errTransient, fmt.Sprintf(format, a...))
}

// classOf returns the class of a deterministic failure, or "" for other errors.
func classOf(err error) string {
	var pe *packageError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
