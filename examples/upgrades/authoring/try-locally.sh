#!/bin/sh
# The authoring loop on your machine, against the node at $API
# (docs/authoring.md; run by TestAuthoringScripts).
set -eu
# What the executor sees: ABI, imports, exports, memory, declared version.
synapse-p2p wasm info add-feature-flag-rs.wasm
# The node's current network state, with its limits in global.governance.limits.
synapse-p2p wasm state --api "$API" --out state.json
# Run the package on it in the same sandbox, with those limits; it prints the
# fuel used and the new state's hash, and checks the version is raised.
synapse-p2p wasm run add-feature-flag-rs.wasm --state state.json --out new.json
# Run it twice: a transform that is safe to re-run changes nothing more.
synapse-p2p wasm run add-feature-flag-rs.wasm --state new.json --version 1.2.0 --out again.json
cmp new.json again.json
