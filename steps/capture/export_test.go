package capture

// What the end-to-end tests (package capture_test: they run plans through
// the engine, which imports this package) use of the internal tests' helpers.
var (
	OwnerPair = ownerPair
	LeftOn    = leftOn
)
