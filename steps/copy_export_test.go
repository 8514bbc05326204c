package steps

// What the end-to-end tests (package steps_test, which runs plans through
// the engine, and the engine imports this package) use of copy's helpers.
var (
	CopyTestSource    = copySource
	CopyAssertSame    = copyAssertSame
	CopyAssertInserts = copyAssertInsertsWork
	CopyExec          = copyExec
	CopyQuery         = copyQuery
	CopyInserted      = copyInserted
	CopySlowDown      = copySlowDown
	CopySlowTableSQL  = copySlowTable
	CopyStateFileName = copyStateFile
)
