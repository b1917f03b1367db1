#!/bin/sh
# Publish and dry-run a package on the node at $API
# (docs/authoring.md; run by TestAuthoringScripts).
set -eu
# Put the package into the node's content store: it prints the ipfs:// URL,
# the sha256 and the size that a proposal names.
synapse-p2p package add --api "$API" add-feature-flag-rs.wasm
# Propose it (--package imports the file and proposes ipfs://<CID>).
synapse-p2p propose --api "$API" --title "Add feature flag" --version 1.2.0 \
  --description "Sets new_feature_enabled on every node" \
  --package add-feature-flag-rs.wasm > proposal.json
id=$(sed -n 's/.*"proposal_id": *"\([^"]*\)".*/\1/p' proposal.json)
# Dry-run it on the node: fetched, verified and run on a copy of its state.
synapse-p2p test --api "$API" "$id"
