package copy

// What the end-to-end tests (package copy_test: they run plans through the
// engine, which imports this package) use of the internal tests' helpers.
var (
	CopyTestSource    = copySource
	CopyAssertSame    = copyAssertSame
	CopyAssertInserts = copyAssertInsertsWork
	CopyInserted      = copyInserted
	CopySlowDown      = copySlowDown
	CopySlowTableSQL  = copySlowTable
	CopyStateFileName = copyStateFile
)
