//go:build race

package testutil

// RaceEnabled reports whether the binary runs under the race detector.
const RaceEnabled = true

// Slack stretches timeouts that stand for "an honest node would have done
// it by now" (raft stall and grace timeouts, a sandbox's wall-clock safety
// net) under the race detector, which slows every node 5-10x and wazero's
// compiler 10-20x: a slowed honest node must not look like a faulty one.
const Slack = 3
