package capture

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/steptest"
)

const bankSchema = `
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE app.events (id bigserial PRIMARY KEY, account int NOT NULL REFERENCES app.accounts, amount int NOT NULL, note text);
INSERT INTO app.accounts SELECT g, 0 FROM generate_series(1, 20) g;
`

// writers is the application: n sessions that each, in a loop, commit an
// event and the balance it moves, sometimes delete an event, sometimes
// roll back, until the fence stops them. It counts what the source
// acknowledged.
type writers struct {
	wg                        sync.WaitGroup
	mu                        sync.Mutex
	inserted, deleted, undone int
	fenced                    int // sessions stopped by the fence
}

func startWriters(t *testing.T, ctx context.Context, src string, n int) *writers {
	w := &writers{}
	for s := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			conn, err := pgx.Connect(ctx, src)
			if err != nil {
				t.Errorf("writer %d: %v", s, err)
				return
			}
			defer conn.Close(context.Background())
			for i := 0; ctx.Err() == nil; i++ {
				ins, del, err := w.once(ctx, conn, s, i)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "25006" {
					w.mu.Lock()
					w.fenced++
					w.mu.Unlock()
					return
				}
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer %d: %v", s, err)
					}
					return
				}
				w.mu.Lock()
				w.inserted += ins
				w.deleted += del
				if ins == 0 {
					w.undone++
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// once is one transaction of the application: it reports what the
// source acknowledged (nothing when the transaction rolled back).
func (w *writers) once(ctx context.Context, conn *pgx.Conn, session, i int) (inserted, deleted int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	account, amount := 1+(session*7+i)%20, 1+i%9
	if _, err := tx.Exec(ctx, "INSERT INTO app.events (account, amount, note) VALUES ($1, $2, $3)", account, amount, fmt.Sprintf("s%d i%d", session, i)); err != nil {
		return 0, 0, err
	}
	if _, err := tx.Exec(ctx, "UPDATE app.accounts SET balance = balance + $2 WHERE id = $1", account, amount); err != nil {
		return 0, 0, err
	}
	if i%10 == 9 {
		return 0, 0, tx.Rollback(ctx) // the application changed its mind: nothing of it may reach the target
	}
	if i%5 == 4 {
		tag, err := tx.Exec(ctx, "DELETE FROM app.events WHERE id = (SELECT min(id) FROM app.events WHERE account = $1)", account)
		if err != nil {
			return 0, 0, err
		}
		deleted = int(tag.RowsAffected())
	}
	return 1, deleted, tx.Commit(ctx)
}

// TestCaptureWithWritersLosesNothing runs the whole capture with the
// application writing all along, until the fence stops it: every
// acknowledged write is on the target, nothing else.
func TestCaptureWithWritersLosesNothing(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, bankSchema)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startWriters(t, ctx, src, 4)
	defer w.wg.Wait()
	defer cancel()
	time.Sleep(300 * time.Millisecond) // writes before the capture exists
	start := mustRun(t, src, dst, "start", nil)
	time.Sleep(500 * time.Millisecond)
	up := mustRun(t, src, dst, "catch_up", func(a *CaptureArgs) { a.MaxLag = "500ms"; a.BatchRows = ptr(300) })
	// The full check, with the writers writing on.
	v := mustRun(t, src, dst, "verify", func(a *CaptureArgs) { a.Jobs = ptr(2) })
	if v.VerifiedRows == 0 || len(v.Differing) != 0 {
		t.Errorf("verify with writers: %d rows, differing %v", v.VerifiedRows, v.Differing)
	}
	time.Sleep(500 * time.Millisecond)
	cut := mustRun(t, src, dst, "cutover", nil)
	if cut.Verify != "changed" || cut.VerifiedRows == 0 || len(cut.Differing) != 0 {
		t.Errorf("cutover's check: %s, %d rows, differing %v", cut.Verify, cut.VerifiedRows, cut.Differing)
	}
	w.wg.Wait()
	if w.fenced != 4 {
		t.Errorf("%d of 4 writers stopped at the fence", w.fenced)
	}
	t.Logf("start %.2fs, catch_up %.2fs (%d changes), cutover %.3fs (%d changes fenced-drained); %d inserts, %d deletes, %d rolled back",
		start.Seconds, up.Seconds, up.Applied, cut.FenceSeconds, cut.Applied, w.inserted, w.deleted, w.undone)
	if w.inserted < 200 || w.undone == 0 {
		t.Errorf("too few writes to tell: %d inserted, %d rolled back", w.inserted, w.undone)
	}
	want := fmt.Sprint(w.inserted - w.deleted)
	if got := steptest.Query(t, dst, "SELECT count(*) FROM app.events"); got[0] != want {
		t.Errorf("target has %s events, the source acknowledged %s", got[0], want)
	}
	same(t, src, dst, "SELECT t::text FROM app.events t ORDER BY id")
	same(t, src, dst, "SELECT t::text FROM app.accounts t ORDER BY id")
	mustRun(t, src, dst, "stop", nil)
	if left := append(leftOn(t, src), leftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
