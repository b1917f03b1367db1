//go:build wasip1

// Command add-validator is a test upgrade that changes governance: it
// makes the first member of global.nodes (by peer ID) that is not yet a
// validator one, and raises the minor version (1.0.0 → 1.1.0 → 1.2.0 …),
// so running it repeatedly grows the validator set by one each time.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/synapse-p2p/synapse-p2p/examples/upgrades/abi"
)

//go:wasmexport alloc
func alloc(size int32) int32 { return abi.Alloc(size) }

//go:wasmexport get_upgrade_info
func getUpgradeInfo() int64 {
	return abi.Pack([]byte(`{"version":"next minor","description":"add one validator","breaking":false}`))
}

//go:wasmexport upgrade
func upgrade(ptr, n int32) int64 {
	out, err := transform(abi.Input(ptr, n))
	if err != nil {
		panic(err)
	}
	return abi.Pack(out)
}

func transform(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var state map[string]any
	if err := dec.Decode(&state); err != nil {
		return nil, err
	}
	g := state["global"].(map[string]any)
	vals := map[string]bool{}
	var list []any
	for _, v := range g["validators"].([]any) {
		vals[v.(string)] = true
		list = append(list, v)
	}
	var members []string
	for id := range g["nodes"].(map[string]any) {
		members = append(members, id)
	}
	sort.Strings(members)
	for _, id := range members {
		if !vals[id] {
			list = append(list, id)
			break
		}
	}
	g["validators"] = list
	var major, minor, patch int
	if _, err := fmt.Sscanf(g["version"].(string), "%d.%d.%d", &major, &minor, &patch); err != nil {
		return nil, err
	}
	g["version"] = fmt.Sprintf("%d.%d.0", major, minor+1)
	return json.Marshal(state)
}

func main() {}
