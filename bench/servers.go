package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/sampleapp"
)

// serverSettings tune both servers alike: enough shared buffers and WAL
// room that checkpoints do not decide the race, WAL as a production
// server writes it (replica), and the throwaway servers' usual
// durability shortcuts (fsync off), which spare every contender the same
// disk waits.
var serverSettings = map[string]string{
	"shared_buffers":     "1GB",
	"max_wal_size":       "16GB",
	"checkpoint_timeout": "1h",
	"wal_level":          "replica",
	"max_connections":    "100",
}

// server is one throwaway PostgreSQL server of the benchmark.
type server struct {
	*pgtest.Server
	name string // source or target
	via  int    // the link proxy's port on 127.0.0.1 that clients use; 0: none
}

// clientPort is the port clients reach the server on.
func (s *server) clientPort() int {
	if s.via != 0 {
		return s.via
	}
	return s.Port
}

// URL is the server's URL for clients, through the link proxy if any.
func (s *server) URL(db string) string {
	u := s.Server.URL(db)
	if s.via != 0 {
		u = strings.Replace(u, fmt.Sprintf(":%d/", s.Port), fmt.Sprintf(":%d/", s.via), 1)
	}
	return u
}

func startServers(ctx context.Context) (src, dst *server, err error) {
	s, d, err := pgtest.StartPair(ctx, pgtest.Options{Settings: serverSettings})
	if err != nil {
		return nil, nil, err
	}
	return &server{Server: s, name: "source"}, &server{Server: d, name: "target"}, nil
}

// exec runs SQL in a database of the server.
func (s *server) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("%s: %s: %w", s.name, firstLine(sql), err)
	}
	return nil
}

// recreate drops and creates an empty database.
func (s *server) recreate(ctx context.Context, db string) error {
	if err := s.DropDatabase(ctx, db); err != nil {
		return err
	}
	_, err := s.CreateDatabase(ctx, db)
	return err
}

// checkpoint flushes what the last run left dirty, so that the next one
// does not pay for it.
func (s *server) checkpoint(ctx context.Context) error {
	return s.exec(ctx, "postgres", "CHECKPOINT")
}

// cpuSeconds is the CPU time of the server's processes that have ended
// (the postmaster's reaped children: every backend of a finished run) and
// of the postmaster itself.
func (s *server) cpuSeconds() float64 {
	raw, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _, _ := strings.Cut(string(raw), "\n")
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which ends with ")": utime is the
	// 14th field, stime 15th, cutime 16th, cstime 17th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// clientEnv is the environment of the PostgreSQL client tools: their
// directory first in PATH, the password in PGPASSWORD.
func (s *server) clientEnv(binDir string) []string {
	env := []string{"PGPASSWORD=" + s.Password, "PATH=" + binDir + ":" + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// generate fills the source database: pgbench's tables at scale, plus the
// sample shop at sample times its default size.
func generate(ctx context.Context, src *server, db, binDir string, scale int, sample float64, log func(string, ...any)) error {
	if err := src.recreate(ctx, db); err != nil {
		return err
	}
	if scale > 0 {
		start := time.Now()
		// Server-side generation (G): no rows cross the network.
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pgbench"), "-i", "-q", "-I", "dtGvp", "-s", strconv.Itoa(scale),
			"-h", src.Host, "-p", strconv.Itoa(src.Port), "-U", src.User, db)
		cmd.Env = src.clientEnv(binDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench -i: %w\n%s", err, out)
		}
		log("pgbench -i -s %d: %.0fs", scale, time.Since(start).Seconds())
	}
	if sample > 0 {
		start := time.Now()
		if err := sampleapp.Seed(ctx, src.URL(db), sampleapp.Scaled(sample)); err != nil {
			return err
		}
		log("sample app at %gx: %.0fs", sample, time.Since(start).Seconds())
	}
	return src.exec(ctx, db, "VACUUM ANALYZE")
}

// datasetSize is the database's size on disk and its rows.
func datasetSize(ctx context.Context, s *server, db string) (bytes, rows int64, tables int, err error) {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&bytes); err != nil {
		return 0, 0, 0, err
	}
	counts, err := countRows(ctx, conn)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, n := range counts {
		rows += n
	}
	return bytes, rows, len(counts), nil
}

// countRows counts the rows of every table exactly, one after the other.
func countRows(ctx context.Context, conn *pgx.Conn) (map[string]int64, error) {
	names, err := tableNames(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+n).Scan(&c); err != nil {
			return nil, err
		}
		out[n] = c
	}
	return out, nil
}

// tableNames lists the tables that hold rows, quoted, biggest first.
func tableNames(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY pg_relation_size(c.oid) DESC, 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "..."
	}
	return s
}
