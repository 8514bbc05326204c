package replicate

// What the end-to-end tests (package replicate_test: they run plans through
// the engine, which imports this package) use of the internal tests' helpers.
var (
	ReplPrepare = replPrepare
	ReplCleanup = replCleanup
)
