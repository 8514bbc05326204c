package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/capture"
	"github.com/planrun/planrun/steps/steptype"
)

// demoWriter is the demo's application: one connection that, in its own
// one-statement transactions, alternately inserts an order and renames a
// customer of the sample shop, at most every interval, for the whole
// apply. It remembers what was acknowledged (each order's notes, each
// customer's last name) to look for it on the target afterwards.
//
// It writes to the source until it is switched, then to the target, as
// the app would be. A write the capture's fence refuses (SQLSTATE 25006)
// is counted as refused; any other error stops the writer and fails the
// demo.
type demoWriter struct {
	srcURL, dstURL string
	customers      int
	interval       time.Duration

	switchTo  chan struct{} // closed by switched: write to the target now
	moved     chan struct{} // closed once the writer has left the source
	onTarget  chan struct{} // closed at the first write the target acknowledged
	done      chan struct{} // closed when run returns
	leaveOnce sync.Once
	firstOnce sync.Once

	// Written by run only; read after done.
	acked, refused int
	orders         map[int64]string // order id → notes
	names          map[int32]string // customer id → last acknowledged name
	firstRefused   time.Time        // when the first refused write was sent
	firstOnTarget  time.Time        // when the target acknowledged its first write
	err            error
}

func newDemoWriter(srcURL, dstURL string, customers int) *demoWriter {
	return &demoWriter{
		srcURL: srcURL, dstURL: dstURL, customers: customers, interval: 5 * time.Millisecond, // 200 a second at most
		switchTo: make(chan struct{}), moved: make(chan struct{}), onTarget: make(chan struct{}), done: make(chan struct{}),
		orders: map[int64]string{}, names: map[int32]string{},
	}
}

// captureType is the capture step type, telling the writer that the app
// is switched as step.stop begins, and waiting until it has left the
// source. The plan's switch step is skipped in the demo (no Heroku app)
// and stop depends on it, so stop's start is the moment the switch is
// done; stop then lifts the fence with the rest of the capture, and a
// write still going to the source would get through and be lost. A real
// switch, too, completes (Heroku restarts the dynos) before the step does.
// The writer thus never writes to the target before the cut-over has
// drained the log and verify has compared both sides.
func (w *demoWriter) captureType() steptype.Type {
	def := capture.Type
	run := def.Fn
	def.Fn = func(ctx context.Context, env *steptype.Env, a *capture.CaptureArgs) (*capture.CaptureOutput, error) {
		if env.Addr == "step.stop" && a.Action == "stop" {
			w.switched(ctx)
		}
		return run(ctx, env, a)
	}
	return def
}

// switched moves the writer to the target and waits until it has left
// the source (or has stopped).
func (w *demoWriter) switched(ctx context.Context) {
	select {
	case <-w.switchTo:
	default:
		close(w.switchTo)
	}
	select {
	case <-w.moved:
	case <-w.done:
	case <-ctx.Done():
	}
}

func (w *demoWriter) leave() { w.leaveOnce.Do(func() { close(w.moved) }) }

// run writes until ctx is cancelled or a write fails.
func (w *demoWriter) run(ctx context.Context) {
	defer close(w.done)
	defer w.leave()
	conn, err := pgx.Connect(ctx, w.srcURL)
	if err != nil {
		w.err = fmt.Errorf("writer: connect to the source: %w", err)
		return
	}
	defer func() { pgkit.Close(ctx, conn) }()
	where, switchTo := "source", w.switchTo
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-switchTo:
			// The source's fence is still on: nothing was written there
			// since the first refusal. Connecting is part of the window.
			pgkit.Close(ctx, conn)
			if conn, err = pgx.Connect(ctx, w.dstURL); err != nil {
				w.err = fmt.Errorf("writer: connect to the target: %w", err)
				return
			}
			where, switchTo = "target", nil
			w.leave()
			continue
		case <-tick.C:
		}
		sent := time.Now()
		err := w.write(ctx, conn, n)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			w.acked++
			n++
			if where == "target" {
				w.firstOnce.Do(func() { w.firstOnTarget = time.Now(); close(w.onTarget) })
			}
		case errors.As(err, &pgErr) && pgErr.Code == "25006": // the capture's write fence
			w.refused++
			if w.firstRefused.IsZero() {
				w.firstRefused = sent
			}
		case ctx.Err() != nil:
			return
		default:
			w.err = fmt.Errorf("writer: write %d to the %s: %w", n+1, where, err)
			return
		}
	}
}

// write makes write n: an order inserted (even n) or a customer renamed,
// each its own transaction, remembered once acknowledged.
func (w *demoWriter) write(ctx context.Context, conn *pgx.Conn, n int) error {
	customer := int32(n/2%w.customers + 1)
	value := "demo writer " + strconv.Itoa(n+1)
	if n%2 == 0 {
		var id int64
		err := conn.QueryRow(ctx, `INSERT INTO app.orders (customer_id, status, total, placed_at, notes)
VALUES ($1, 'pending', $2, now(), $3) RETURNING id`, customer, float64(n%9000)/100, value).Scan(&id)
		if err == nil {
			w.orders[id] = value
		}
		return err
	}
	tag, err := conn.Exec(ctx, `UPDATE app.customers SET name = $2 WHERE id = $1`, customer, value)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("customer %d: %d rows updated, not 1", customer, tag.RowsAffected())
	}
	w.names[customer] = value
	return nil
}

// stop lets the writer reach the target (a few seconds at most, once the
// run succeeded), then stops it and waits for it.
func (w *demoWriter) stop(ctx context.Context, cancel context.CancelFunc, succeeded bool) {
	if succeeded {
		select {
		case <-w.onTarget:
		case <-w.done:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	cancel()
	<-w.done
}

// lost counts the acknowledged writes the target lacks: orders missing
// (or with other notes) and customers without their last acknowledged
// name.
func (w *demoWriter) lost(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, w.dstURL)
	if err != nil {
		return 0, fmt.Errorf("writer: connect to the target: %w", err)
	}
	defer pgkit.Close(ctx, conn)
	orders, err := matching(ctx, conn, "SELECT id, coalesce(notes, '') FROM app.orders WHERE id = ANY($1)", w.orders)
	if err != nil {
		return 0, fmt.Errorf("writer: read the orders on the target: %w", err)
	}
	customers, err := matching(ctx, conn, "SELECT id, name FROM app.customers WHERE id = ANY($1)", w.names)
	if err != nil {
		return 0, fmt.Errorf("writer: read the customers on the target: %w", err)
	}
	return len(w.orders) - orders + len(w.names) - customers, nil
}

// matching counts the rows of want that query (given want's keys as $1)
// finds with the value wanted.
func matching[K int32 | int64](ctx context.Context, conn *pgx.Conn, query string, want map[K]string) (int, error) {
	keys := make([]K, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	found := 0
	var k K
	var v string
	err := pgkit.Each(ctx, conn, query, []any{keys}, []any{&k, &v}, func() error {
		if want[k] == v {
			found++
		}
		return nil
	})
	return found, err
}

// blocked is how long the app could not write: from the first write the
// fence refused (or held until it refused it) to the first one the target
// acknowledged; 0 when none was refused.
func (w *demoWriter) blocked() (time.Duration, bool) {
	if w.firstRefused.IsZero() || w.firstOnTarget.IsZero() {
		return 0, false
	}
	return w.firstOnTarget.Sub(w.firstRefused), true
}

// groupDigits writes n with thousands separators: 12,345.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
