package pgtest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The pair shared by all tests, started once by Main.
var source, target *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &source, &target)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPairQueries(t *testing.T) {
	if source.Port == target.Port || source.DataDir == target.DataDir {
		t.Fatalf("pair shares port or data dir: %d %s / %d %s", source.Port, source.DataDir, target.Port, target.DataDir)
	}
	for name, s := range map[string]*Server{"source": source, "target": target} {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			dbURL := s.FreshDB(t)
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var db, walLevel string
			var sum int
			if err := conn.QueryRow(ctx, "SELECT current_database(), 1+1, current_setting('wal_level')").Scan(&db, &sum, &walLevel); err != nil {
				t.Fatal(err)
			}
			if sum != 2 || walLevel != "logical" || !strings.HasPrefix(db, "t_testpairqueries_"+name) {
				t.Errorf("got db=%q sum=%d wal_level=%q", db, sum, walLevel)
			}
		})
	}
}

func TestFreshDBDistinct(t *testing.T) {
	var names []string
	for _, sub := range []string{"first", "second"} {
		t.Run(sub, func(t *testing.T) {
			u, err := url.Parse(source.FreshDB(t))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(u.Path, "/")
			if !databaseExists(t, source, name) {
				t.Fatalf("database %q was not created", name)
			}
			names = append(names, name)
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("want two distinct databases, got %q", names)
	}
	// The subtests' cleanups have run by now.
	for _, name := range names {
		if databaseExists(t, source, name) {
			t.Errorf("database %q was not dropped at cleanup", name)
		}
	}
}

func databaseExists(t *testing.T, s *Server, name string) bool {
	t.Helper()
	ctx := testCtx(t)
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestDBNameSanitized(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	seen := map[string]bool{}
	for _, in := range []string{
		"TestX",
		"TestX/sub_case#01",
		"123 starts with digit",
		strings.Repeat("Ünïcode/and spaces-", 10),
		strings.Repeat("a", 200),
	} {
		got, err := dbName(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > maxIdentLen || !valid.MatchString(got) || seen[got] {
			t.Errorf("dbName(%q) = %q: invalid, too long or duplicate", in, got)
		}
		seen[got] = true
	}
}

func TestWrongPasswordRejected(t *testing.T) {
	ctx := testCtx(t)
	wrong := &Server{Host: source.Host, Port: source.Port, User: source.User, Password: "not-" + source.Password}
	_, err := pgx.Connect(ctx, wrong.URL("postgres"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" { // invalid_password
		t.Fatalf("want invalid_password error, got %v", err)
	}
	conn, err := source.Connect(ctx, "postgres")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	conn.Close(ctx)
}

func TestURL(t *testing.T) {
	s := &Server{Host: "127.0.0.1", Port: 5433, User: "postgres", Password: "pw"}
	if got, want := s.URL("app"), "postgres://postgres:pw@127.0.0.1:5433/app?sslmode=disable"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

// TestStopRemovesDataDirAndClosesPort also forces a port clash on the first
// attempt to exercise the retry.
func TestStopRemovesDataDirAndClosesPort(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	picks := 0
	var log bytes.Buffer
	s, err := Start(testCtx(t), Options{
		Log: &log,
		pickPort: func() (int, error) {
			picks++
			if picks == 1 {
				return busyPort, nil
			}
			return freePort()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if s.Port == busyPort || picks < 2 {
		t.Errorf("port clash not retried: port %d, busy %d, picks %d", s.Port, busyPort, picks)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "PG_VERSION")); err != nil {
		t.Fatalf("data dir missing while running: %v", err)
	}
	pid := s.proc.cmd.Process.Pid
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(s.root); !os.IsNotExist(err) {
		t.Errorf("data dir still there after Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("port %s still accepts connections after Stop", addr)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still exists after Stop: %v", pid, err)
	}
	if !strings.Contains(log.String(), "ready to accept connections") {
		t.Errorf("Options.Log did not receive the server log:\n%s", log.String())
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	t.Parallel()
	_, err := Start(testCtx(t), Options{Settings: map[string]string{"shared_buffers": "bogus"}})
	if err == nil || !strings.Contains(err.Error(), "server log") || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("want error with server log about shared_buffers, got %v", err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir() = %s: %v", dir, err)
		}
	}

	t.Setenv(BinDirEnv, t.TempDir())
	if _, err := FindBinDir(); err == nil {
		t.Errorf("FindBinDir accepted a %s without binaries", BinDirEnv)
	}
}
