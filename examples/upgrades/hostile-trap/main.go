//go:build wasip1

// Command hostile-trap is a hostile test package: it traps (a nil dereference).
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-trap","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	var p *[]byte
	if len(in) > 0 {
		_ = (*p)[0]
	}
	return abi.Pack(in)
}

func main() {}
