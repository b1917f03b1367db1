//go:build wasip1

// Command hostile-import is a hostile test package: it imports a function outside wasi_snapshot_preview1.
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-import","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	_ = in
	return int64(evil())
}

//go:wasmimport env evil
func evil() int32

func main() {}
