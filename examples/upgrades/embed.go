// Package upgrades holds the sources of the example upgrade packages. Each
// subdirectory is a Go program for GOOS=wasip1 GOARCH=wasm (see
// docs/wasm-abi.md); the sources are embedded so that upgrade.BuildExample
// can build them from any working directory.
//
// Reactor examples are built with -buildmode=c-shared and export memory,
// alloc, upgrade and get_upgrade_info; command examples are ordinary WASI
// programs (see Command).
package upgrades

import "embed"

// Sources holds every example's source files, rooted at this directory.
//
//go:embed abi add-feature-flag command-feature-flag hostile-*
var Sources embed.FS

// Examples lists the example names (subdirectories of Sources), sorted.
var Examples = []string{
	"add-feature-flag",
	"command-feature-flag",
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
func Command(name string) bool { return name == "command-feature-flag" }

// ModulePath is the module path the examples are built in; the abi helper
// package is imported as ModulePath + "/abi".
const ModulePath = "github.com/synapse-p2p/synapse-p2p/examples/upgrades"
