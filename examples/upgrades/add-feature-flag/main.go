//go:build wasip1

// Command add-feature-flag is the seed's reference upgrade: it sets
// new_feature_enabled on every node of global.nodes and raises
// global.version to 1.2.0. Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o add-feature-flag.wasm
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

const version = "1.2.0"

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	out, err := transform(abi.Input(ptr, n))
	if err != nil {
		panic(err) // a trap: the host reports the message from stderr
	}
	return abi.Pack(out)
}

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	info, _ := json.Marshal(map[string]any{
		"version":     version,
		"description": "enable new_feature_enabled on every node",
		"breaking":    false,
	})
	return abi.Pack(info)
}

func transform(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber() // keep numbers exactly as written
	var state map[string]any
	if err := dec.Decode(&state); err != nil {
		return nil, err
	}
	global, ok := state["global"].(map[string]any)
	if !ok {
		return nil, errors.New("state has no global object")
	}
	if nodes, ok := global["nodes"].(map[string]any); ok {
		for _, n := range nodes {
			if node, ok := n.(map[string]any); ok {
				node["new_feature_enabled"] = true
			}
		}
	}
	global["version"] = version
	return json.Marshal(state)
}

func main() {}
