package pgkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/steps/steptype"
)

// Database is a database argument (database = database.NAME): the block's
// name and its connection string (a postgres:// URL or key=value pairs).
type Database struct {
	Name string `cty:"name"`
	URL  string `cty:"url"`
}

// PinnedSettings fix every session setting that changes how values print as
// text, so that both sides of a comparison render rows identically.
var PinnedSettings = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"client_encoding":    "UTF8",
	"application_name":   "planrun",
}

// ConnConfig parses a database's connection string, registers its password
// as a secret and pins the session settings. readOnly makes every
// transaction of the session read-only (checks).
func ConnConfig(env *steptype.Env, db *Database, readOnly bool) (*pgx.ConnConfig, error) {
	if db == nil || db.URL == "" {
		return nil, errors.New("no database given")
	}
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		// pgx's parse errors may quote the connection string: say only what is wrong.
		return nil, fmt.Errorf("database %s: cannot parse the connection string (a postgres:// URL or key=value pairs): %s", db.Name, parseProblem(err))
	}
	if env != nil && env.Secrets != nil {
		env.Secrets(append(ConnSecrets(db.URL), cfg.Password)...)
	}
	for k, v := range PinnedSettings {
		cfg.RuntimeParams[k] = v
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	return cfg, nil
}

func parseProblem(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return "invalid syntax"
}

// Connect opens a connection to a database argument.
func Connect(ctx context.Context, env *steptype.Env, db *Database, readOnly bool) (*pgx.Conn, error) {
	cfg, err := ConnConfig(env, db, readOnly)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, explainConnect(fmt.Sprintf("connect to database %s (%s):", db.Name, Describe(cfg)), err)
	}
	return conn, nil
}

// Describe names a connection without its password.
func Describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// LibPQ returns what a libpq tool (pg_dump, pg_restore, psql) needs to reach
// a database: the user's connection string whole but for its password, and
// the environment that carries the password, so that it never shows in
// `ps`.
func LibPQ(env *steptype.Env, db *Database) (conn string, environ []string, err error) {
	cfg, err := ConnConfig(env, db, false)
	if err != nil {
		return "", nil, err
	}
	conn, err = withoutPassword(db.URL)
	if err != nil {
		return "", nil, fmt.Errorf("database %s: cannot parse the connection string: %w", db.Name, err)
	}
	environ = []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGPASSWORD=") {
			environ = append(environ, kv)
		}
	}
	if cfg.Password != "" {
		environ = append(environ, "PGPASSWORD="+cfg.Password)
	}
	return conn, environ, nil
}

// BinDirEnv overrides where planrun looks for pg_dump, pg_restore and psql.
const BinDirEnv = "PLANRUN_PG_BINDIR"

var MajorRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// Tool finds a PostgreSQL client tool whose major version is at least
// minMajor (pg_dump refuses servers newer than itself): $PLANRUN_PG_BINDIR,
// then /usr/lib/postgresql/*/bin newest first, then PATH.
func Tool(ctx context.Context, name string, minMajor int) (string, int, error) {
	var candidates []string
	if dir := os.Getenv(BinDirEnv); dir != "" {
		candidates = append(candidates, filepath.Join(dir, name))
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		candidates = append(candidates, filepath.Join(d, name))
	}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	var found []string
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, c, "--version").Output()
		if err != nil {
			continue
		}
		m := MajorRe.FindSubmatch(out)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(string(m[1]))
		if major >= minMajor {
			return c, major, nil
		}
		found = append(found, fmt.Sprintf("%s (%d)", c, major))
	}
	if len(found) > 0 {
		return "", 0, fmt.Errorf("%s %d or newer is needed for a PostgreSQL %d server; found only %s. Install the newer client (apt-get install -y postgresql-client-%d) or set %s",
			name, minMajor, minMajor, strings.Join(found, ", "), minMajor, BinDirEnv)
	}
	return "", 0, fmt.Errorf("%s not found: install the PostgreSQL client tools (apt-get install -y postgresql-client) or set %s", name, BinDirEnv)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// ServerMajor asks a server for its major version.
func ServerMajor(ctx context.Context, conn *pgx.Conn) (int, error) {
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return 0, fmt.Errorf("server version: %w", err)
	}
	return num / 10000, nil
}

// QuoteIdent quotes an SQL identifier.
func QuoteIdent(s string) string {
	return pgx.Identifier{s}.Sanitize()
}

// SetSnapshotSQL is the statement that imports an exported snapshot into a
// REPEATABLE READ transaction. It must come first in the transaction, and
// cannot take the snapshot as a parameter.
func SetSnapshotSQL(snapshot string) string {
	return "SET TRANSACTION SNAPSHOT '" + strings.ReplaceAll(snapshot, "'", "''") + "'"
}

// Qualified quotes schema.name.
func Qualified(schema, name string) string {
	return pgx.Identifier{schema, name}.Sanitize()
}

// connectError is a failed connection said one cause per line, the one
// that matters first — a server's answer (a wrong password) before a
// fallback's (a server that refused TLS) — with a hint at what to check.
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.err }

func explainConnect(what string, err error) error {
	var causes []error
	if ce, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		inner := ce.Unwrap()
		if many, ok := inner.(interface{ Unwrap() []error }); ok {
			causes = many.Unwrap()
		} else {
			causes = []error{inner}
		}
	} else {
		causes = []error{err}
	}
	// A server's own answer first: it is why no fallback worked either.
	sort.SliceStable(causes, func(i, j int) bool {
		_, pi := errors.AsType[*pgconn.PgError](causes[i])
		_, pj := errors.AsType[*pgconn.PgError](causes[j])
		return pi && !pj
	})
	var b strings.Builder
	b.WriteString(what)
	for _, c := range causes {
		b.WriteString("\n  ")
		b.WriteString(c.Error())
	}
	if hint := connectHint(causes[0]); hint != "" {
		b.WriteString("\n  hint: " + hint)
	}
	return &connectError{msg: b.String(), err: err}
}

func connectHint(err error) string {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "28P01", "28000":
			return "check the user and password in the connection string (for a variable: its value, e.g. -var or PLANRUN_VAR_*)"
		case "3D000":
			return "check the database name in the connection string"
		case "53300":
			return "the server has no connection slots left: lower jobs, or raise max_connections"
		}
		return ""
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return "is the server running and reachable? check the host and port in the connection string"
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return "check the host name in the connection string"
	}
	if strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "x509") {
		return "check sslmode (and sslrootcert for verify-ca/verify-full) in the connection string"
	}
	return ""
}
