//go:build wasip1

// Command rotate-validators is a test upgrade that changes governance: it
// replaces all but the last validator (by peer ID) with as many members
// of global.nodes that are not validators (the first ones by peer ID), and
// raises the minor version. The removed validators keep their keys: the
// long-range test makes them sign entries they no longer may.
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
	return abi.Pack([]byte(`{"version":"next minor","description":"rotate all validators but one","breaking":true}`))
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
	var vals []string
	isVal := map[string]bool{}
	for _, v := range g["validators"].([]any) {
		vals = append(vals, v.(string))
		isVal[v.(string)] = true
	}
	sort.Strings(vals)
	var members []string
	for id := range g["nodes"].(map[string]any) {
		if !isVal[id] {
			members = append(members, id)
		}
	}
	sort.Strings(members)
	keep := vals[len(vals)-1]
	out := []any{keep}
	for _, id := range members[:len(vals)-1] {
		out = append(out, id)
	}
	g["validators"] = out
	var major, minor, patch int
	if _, err := fmt.Sscanf(g["version"].(string), "%d.%d.%d", &major, &minor, &patch); err != nil {
		return nil, err
	}
	g["version"] = fmt.Sprintf("%d.%d.0", major, minor+1)
	return json.Marshal(state)
}

func main() {}
