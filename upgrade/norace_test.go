//go:build !race

package upgrade

// raceSlack: see race_test.go.
const raceSlack = 1
