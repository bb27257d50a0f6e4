//go:build race

package plan

// raceEnabled is true when tests run with the race detector, which slows
// them too much for timing checks.
const raceEnabled = true
