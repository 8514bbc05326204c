package pgkit

import (
	"context"
	"sync"
)

// RunWorkers starts jobs workers (never more than there are items), feeds
// them the items through a channel, and returns when every worker has. A
// worker's error cancels ctx with that error — cancel must be ctx's — which
// stops the feeding and tells the other workers to stop; the caller reads
// it with context.Cause(ctx).
func RunWorkers[T any](ctx context.Context, cancel context.CancelCauseFunc, jobs int, items []T, worker func(work <-chan T) error) {
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(jobs, len(items)) {
		wg.Go(func() {
			if err := worker(work); err != nil {
				cancel(err)
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}
