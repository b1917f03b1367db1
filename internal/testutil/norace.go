//go:build !race

package testutil

// RaceEnabled reports whether the binary runs under the race detector.
const RaceEnabled = false

// Slack stretches timeouts under the race detector (see race.go); without
// it they are as written.
const Slack = 1
