//go:build wasip1

// Command hostile-bigoutput is a hostile test package: it returns 100 MiB of output.
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-bigoutput","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	out := make([]byte, 100<<20)
	copy(out, in)
	return abi.Pack(out)
}

func main() {}
