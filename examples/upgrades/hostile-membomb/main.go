//go:build wasip1

// Command hostile-membomb is a hostile test package: it allocates until the memory limit stops it.
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-membomb","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	for {
		hoard = append(hoard, make([]byte, 1<<20))
		hoard[len(hoard)-1][0] = in[0]
	}
}

var hoard [][]byte

func main() {}
