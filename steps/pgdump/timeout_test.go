package pgdump

import (
	"bytes"
	"context"
	"errors"
	"net"
	neturl "net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// blackhole is a TCP proxy to a server whose network can be made to fail,
// as a test needs: once cut, it accepts new connections and never answers
// them; and a connection on which the client sends stallOn forwards
// nothing more either way (the client waits for an answer that never
// comes), as when a link fails in the middle of a query. Closes are passed
// on, so that the server's session ends with its client. Stalling stops
// when disarmed.
type blackhole struct {
	ln      net.Listener
	target  string
	stallOn []byte
	cut     atomic.Bool
	armed   atomic.Bool  // stall on stallOn
	stalls  atomic.Int32 // connections stalled so far
	mu      sync.Mutex
	conns   []net.Conn
	closed  bool
	wg      sync.WaitGroup
}

// newBlackhole proxies url's server and returns url through the proxy.
func newBlackhole(t *testing.T, url string, stallOn string) (*blackhole, string) {
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: u.Host, stallOn: []byte(stallOn)}
	b.armed.Store(stallOn != "")
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	u.Host = ln.Addr().String()
	return b, u.String()
}

func (b *blackhole) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		if !b.track(c) || b.cut.Load() {
			continue // held open unanswered until close
		}
		s, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		if !b.track(s) {
			continue
		}
		stalled := new(atomic.Bool)
		b.wg.Add(2)
		go b.pipe(s, c, stalled, true)
		go b.pipe(c, s, stalled, false)
	}
}

func (b *blackhole) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return false
	}
	b.conns = append(b.conns, c)
	return true
}

// pipe copies src to dst until either closes; watch looks for stallOn in
// what the client sends.
func (b *blackhole) pipe(dst, src net.Conn, stalled *atomic.Bool, watch bool) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of what came before, for a marker split across reads
	for {
		n, err := src.Read(buf)
		if n > 0 && watch && b.armed.Load() && !stalled.Load() {
			window := append(tail, buf[:n]...)
			if bytes.Contains(window, b.stallOn) {
				stalled.Store(true)
				b.stalls.Add(1)
			}
			tail = bytes.Clone(window[max(0, len(window)-len(b.stallOn)+1):])
		}
		if n > 0 && !stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// A step's timeout includes the tool's grace: pg_dump and pg_restore,
// blocked on a locked table, get SIGTERM and send the server a cancel
// request, which hangs (the network to the server is gone), so only
// SIGKILL stops them. It comes at the timeout, not 10 s after it.
func TestPgDumpTimeoutIncludesGrace(t *testing.T) {
	const timeout = 3 * time.Second // SIGTERM at 2.25 s
	lockTable := func(url, table string) {
		t.Helper()
		tx, err := steptest.Connect(t, url).Begin(steptest.Ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(steptest.Ctx(t), `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
	}
	src := fixtureDB(t)
	env, _ := dumpOf(t, PgDumpArgs{Database: steptest.DB(src), Path: "dump"})
	for _, c := range []struct {
		name string
		url  string
		run  func(ctx context.Context, url string) error
	}{
		{"pg_dump", src, func(ctx context.Context, url string) error {
			_, err := runPgDump(ctx, env, &PgDumpArgs{Database: steptest.DB(url), Path: "late"})
			return err
		}},
		{"pg_restore", Target.FreshDB(t), func(ctx context.Context, url string) error {
			_, err := runPgRestore(ctx, env, &PgRestoreArgs{Database: steptest.DB(url), Path: "dump", Clean: true, IfExists: true})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			steptest.MustSQL(t, c.url, `CREATE TABLE IF NOT EXISTS authors (id int)`)
			lockTable(c.url, "authors")
			proxy, url := newBlackhole(t, c.url, "")
			ctx, cancel := context.WithTimeout(steptest.Ctx(t), timeout)
			defer cancel()
			deadline, _ := ctx.Deadline()
			done := make(chan error, 1)
			go func() { done <- c.run(ctx, url) }()
			waitFor(t, c.url, lockWaiters("authors"), "1", c.name+" to wait for the lock")
			proxy.cut.Store(true)
			if until := time.Until(deadline); until < timeout/4 {
				t.Logf("the lock wait was seen only %s before the deadline, after SIGTERM: the cancel request may have got through", until)
			}
			err := <-done
			late := time.Since(deadline)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the deadline", err)
			}
			// Generous for a loaded machine, and far below the 10 s grace.
			if late < 0 || late > 1500*time.Millisecond {
				t.Errorf("returned %s after the deadline, want at it (not %s after)", late, pgkit.ClientGrace)
			}
			t.Logf("returned %s after the deadline", late)
		})
	}
	if left := listDir(t, env.PlanDir); len(left) != 1 {
		t.Errorf("plan directory holds %q, want only the dump", left)
	}
}
