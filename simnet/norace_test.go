//go:build !race

package simnet_test

// raceSlack: see race_test.go.
const raceSlack = 1
