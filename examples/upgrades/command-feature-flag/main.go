//go:build wasip1

// Command command-feature-flag is the command-ABI example: a plain WASI
// program that reads the state on stdin and writes the new state on stdout
// (argv ["pkg","upgrade"]), or its info (argv ["pkg","info"]). It sets
// global.command_abi = true and raises global.version to 1.3.0. Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -o command-feature-flag.wasm
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

const version = "1.3.0"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pkg upgrade|info")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "info":
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"version": version, "description": "set global.command_abi", "breaking": false,
		})
	case "upgrade":
		dec := json.NewDecoder(os.Stdin)
		dec.UseNumber()
		var state map[string]any
		if err := dec.Decode(&state); err != nil {
			fmt.Fprintln(os.Stderr, "bad state:", err)
			os.Exit(1)
		}
		global, ok := state["global"].(map[string]any)
		if !ok {
			fmt.Fprintln(os.Stderr, "state has no global object")
			os.Exit(1)
		}
		global["command_abi"] = true
		global["version"] = version
		if err := json.NewEncoder(os.Stdout).Encode(state); err != nil {
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
