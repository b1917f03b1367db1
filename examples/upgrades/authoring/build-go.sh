#!/bin/sh
# Builds the Go example packages from the repository root into $OUT
# (docs/authoring.md; run by TestAuthoringScripts).
set -eu
OUT=${OUT:-.}
# A reactor package is a c-shared wasip1 build (exports alloc, upgrade, get_upgrade_info).
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o "$OUT/add-feature-flag.wasm" ./examples/upgrades/add-feature-flag
# A command package is an ordinary wasip1 program (_start).
GOOS=wasip1 GOARCH=wasm go build -trimpath -o "$OUT/command-feature-flag.wasm" ./examples/upgrades/command-feature-flag
