// Package upgrades holds the example upgrade packages. The Go examples are
// programs for GOOS=wasip1 GOARCH=wasm (see docs/wasm-abi.md); their
// sources are embedded so that internal/examplebuild can build them from
// any working directory.
//
// Reactor examples are built with -buildmode=c-shared and export memory,
// alloc, upgrade and get_upgrade_info; command examples are ordinary WASI
// programs (see Command).
//
// The Rust examples (names ending in -rs, see Rust) are a Cargo workspace
// (Cargo.toml here; the abi-rs crate is the Rust counterpart of the abi
// package). A Go toolchain cannot build them, so their .wasm is committed
// beside the sources and embedded here (Prebuilt); scripts/build-rust-guests.sh
// rebuilds them reproducibly with Debian's Rust toolchain and CI checks
// that the bytes are identical.
package upgrades

import (
	"embed"
	"fmt"
	"strings"
)

// Sources holds every Go example's source files, rooted at this directory.
//
//go:embed abi add-feature-flag command-feature-flag hostile-*
var Sources embed.FS

//go:embed add-feature-flag-rs/add-feature-flag-rs.wasm command-feature-flag-rs/command-feature-flag-rs.wasm
var prebuilt embed.FS

// Examples lists the example names (subdirectories), sorted.
var Examples = []string{
	"add-feature-flag",
	"add-feature-flag-rs",
	"command-feature-flag",
	"command-feature-flag-rs",
	"hostile-bigoutput",
	"hostile-import",
	"hostile-loop",
	"hostile-membomb",
	"hostile-nonjson",
	"hostile-readfile",
	"hostile-trap",
}

// Command reports whether an example uses the command ABI (WASI _start)
// instead of the reactor ABI.
func Command(name string) bool {
	return name == "command-feature-flag" || name == "command-feature-flag-rs"
}

// Rust reports whether an example is written in Rust: its .wasm comes
// from Prebuilt, not from the Go toolchain.
func Rust(name string) bool { return strings.HasSuffix(name, "-rs") }

// Prebuilt returns the committed .wasm of the Rust example name, as built
// by scripts/build-rust-guests.sh.
func Prebuilt(name string) ([]byte, error) {
	if !Rust(name) {
		return nil, fmt.Errorf("upgrades: %q is not a Rust example", name)
	}
	b, err := prebuilt.ReadFile(name + "/" + name + ".wasm")
	if err != nil {
		return nil, fmt.Errorf("upgrades: no committed .wasm for %q: %w", name, err)
	}
	return b, nil
}

// ModulePath is the module path the examples are built in; the abi helper
// package is imported as ModulePath + "/abi".
const ModulePath = "github.com/synapse-p2p/synapse-p2p/examples/upgrades"
