//go:build wasip1

// Command hostile-loop is a hostile test package: it never returns (the deadline must stop it).
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-loop","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	for len(in) >= 0 {
		spin++
	}
	return abi.Pack(in)
}

var spin int

func main() {}
