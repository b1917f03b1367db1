package upgrade_test

import (
	"context"
	"fmt"

	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// Run is the authoring loop of `synapse-p2p wasm run`: it runs a package on
// a network state in the sandbox, with the limits the executor would use
// on that state, and returns the new state in canonical JSON. The package
// here is the committed Rust build of the reference example (it sets
// new_feature_enabled on every node of global.nodes and global.version to
// 1.2.0). The sandbox runs in a child process of this binary, so main (here
// TestMain) must call upgrade.MaybeRunSandboxChild first.
func ExampleRun() {
	state := []byte(`{"global":{"version":"1.0.0","nodes":{"n1":{"role":"validator"},"n2":{}}}}`)
	res, err := upgrade.Run(context.Background(), upgrade.DefaultConfig(),
		"../examples/upgrades/add-feature-flag-rs/add-feature-flag-rs.wasm", state)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Println(string(res.Output))
	fmt.Println("fuel used within the budget:", res.FuelUsed > 0 && res.FuelUsed <= res.Limits.Fuel)
	// Output:
	// {"global":{"nodes":{"n1":{"new_feature_enabled":true,"role":"validator"},"n2":{"new_feature_enabled":true}},"version":"1.2.0"}}
	// fuel used within the budget: true
}
