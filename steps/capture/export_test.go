package capture

import (
	"context"
	"testing"
)

// What the end-to-end tests (package capture_test: they run plans through
// the engine, which imports this package) use of the internal tests' helpers.
var (
	OwnerPair  = ownerPair
	LeftOn     = leftOn
	Same       = same
	BankSchema = bankSchema
)

// RunWriters starts n application sessions writing to src until the
// fence stops them (or ctx ends); wait returns what the source
// acknowledged.
func RunWriters(t *testing.T, ctx context.Context, src string, n int) (wait func() (inserted, deleted, fenced int)) {
	w := startWriters(t, ctx, src, n)
	return func() (int, int, int) {
		w.wg.Wait()
		return w.inserted, w.deleted, w.fenced
	}
}
