//go:build race

package queries_test

// raceEnabled is true when the race detector instruments the test binary,
// which makes the brute-force property test about ten times slower.
const raceEnabled = true
