//go:build race

package simnet_test

// raceSlack stretches the raft stall and grace timeouts of the tests under
// the race detector, which slows every node 5-10x: an honest but slowed
// leader must not look like one that stalls or censors.
const raceSlack = 3
