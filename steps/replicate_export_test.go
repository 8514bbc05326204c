package steps

// What the end-to-end tests (package steps_test) use of replicate's test
// helpers.
var (
	ReplPrepare = replPrepare
	ReplCleanup = replCleanup
)
