//go:build race

package upgrade

// raceSlack stretches the tests' default wall-clock safety net under the
// race detector, where the sandbox child is race-instrumented and wazero
// compiles 10-20x slower: the net must not fire on a package a limit of
// the state is about to stop.
const raceSlack = 3
