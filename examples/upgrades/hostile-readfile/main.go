//go:build wasip1

// Command hostile-readfile is a hostile test package: it tries to read a host file (there are no mounts).
package main

import (
	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
	"os"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"9.9.9","description":"hostile: hostile-readfile","breaking":true}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	in := abi.Input(ptr, n)
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		panic("reading /etc/passwd: " + err.Error())
	}
	_ = in
	return abi.Pack(b)
}

func main() {}
