package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TB is the subset of testing.TB used here; declared locally so that
// non-test binaries (planrun demo) can link this package without "testing".
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// silently, which could make two "unique" names collide.
const maxIdentLen = 63

var dbSeq atomic.Uint64

// FreshDB creates an empty database named after t.Name() (sanitized, lower
// case, at most 63 bytes, with a unique suffix), drops it when the test
// finishes, and returns its URL. It calls t.Fatalf on failure.
func (s *Server) FreshDB(t TB) string {
	t.Helper()
	name, err := dbName(t.Name())
	if err != nil {
		t.Fatalf("pgtest: FreshDB: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, err := s.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatalf("pgtest: FreshDB: %v", err)
	}
	t.Cleanup(func() {
		if s.isStopped() {
			return // the whole server is gone already
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Fatalf("pgtest: FreshDB cleanup: %v", err)
		}
	})
	return url
}

// dbName turns a test name into a valid, unique database name.
func dbName(testName string) (string, error) {
	random, err := randomHex(3)
	if err != nil {
		return "", fmt.Errorf("generate name: %w", err)
	}
	suffix := "_" + strconv.FormatUint(dbSeq.Add(1), 10) + "_" + random

	var b strings.Builder
	b.WriteString("t_") // never starts with a digit; marks test databases
	lastUnderscore := true
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			lastUnderscore = false
		} else if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	base := strings.TrimRight(b.String(), "_")
	if room := maxIdentLen - len(suffix); len(base) > room {
		base = strings.TrimRight(base[:room], "_") // ASCII only, so byte slicing is safe
	}
	return base + suffix, nil
}

// Main is for TestMain: it starts one server per pointer in servers
// (concurrently), runs the tests, stops the servers, and returns the exit
// code for os.Exit. If the servers cannot start it prints why to stderr and
// returns 1: a missing database must fail the tests, never skip them.
//
//	var db *pgtest.Server
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &db)) }
//
// Servers are also stopped on SIGINT/SIGTERM. If a test panics or times out
// the process dies without running this cleanup; the postmasters then shut
// themselves down (parent-death signal) and a later Start removes the
// leftover directories.
func Main(m interface{ Run() int }, servers ...**Server) (code int) {
	// Catch signals from the start so an interrupted startup cleans up too.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)

	var (
		mu      sync.Mutex
		started []*Server
	)
	stopAll := func() (failed bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range started {
			if err := s.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: stop server: %v\n", err)
				failed = true
			}
		}
		return failed
	}

	// Watch for signals until Main returns.
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "pgtest: got %v, stopping PostgreSQL servers\n", sig)
			stopAll()
			code := 1
			if n, ok := sig.(syscall.Signal); ok {
				code = 128 + int(n) // shell convention for "killed by signal"
			}
			os.Exit(code)
		case <-done:
		}
	}()
	defer watcher.Wait()
	defer close(done)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	list, err := startMany(ctx, Options{}, len(servers))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL for the tests: %v\n", err)
		return 1
	}
	mu.Lock()
	started = list
	mu.Unlock()
	for i, p := range servers {
		*p = list[i]
	}

	// Deferred so the servers are stopped even if m.Run panics.
	defer func() {
		if stopAll() && code == 0 {
			code = 1
		}
	}()
	return m.Run()
}
