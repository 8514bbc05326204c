package preflight

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// PreflightArgs are the arguments of preflight.
type PreflightArgs struct {
	Source        *pgkit.Database `hcl:"source" doc:"The database to be moved."`
	Target        *pgkit.Database `hcl:"target,optional" doc:"The database it moves to; without it only the source and the client tools are checked."`
	PgDumpPath    string          `hcl:"pg_dump_path,optional" doc:"The pg_dump to check (default: the one pg_dump steps would pick)."`
	PgRestorePath string          `hcl:"pg_restore_path,optional" doc:"The pg_restore to check (default: the one pg_restore steps would pick)."`
}

// PreflightOutput is the output of preflight.
type PreflightOutput struct {
	Findings         []PreflightFinding `json:"findings" doc:"What may make the move fail or lose data, errors first."`
	Errors           int                `json:"errors" doc:"How many findings are errors: the move fails or silently loses data."`
	Warnings         int                `json:"warnings" doc:"How many findings are warnings: likely trouble, to look at before the window."`
	SourceVersion    string             `json:"source_version" doc:"The source server's version, such as 15.6."`
	TargetVersion    string             `json:"target_version" doc:"The target server's version; empty without a target."`
	PgDumpVersion    string             `json:"pg_dump_version" doc:"The version of the pg_dump that would run (or was given); empty when none was found."`
	PgRestoreVersion string             `json:"pg_restore_version" doc:"The version of the pg_restore that would run (or was given); empty when none was found."`
	SourceBytes      int64              `json:"source_bytes" doc:"The source database's size on disk, indexes included."`
	OK               bool               `json:"ok" doc:"No finding is an error."`
	Seconds          float64            `json:"seconds" doc:"How long the checks took."`
}

// PreflightFinding is one problem found.
type PreflightFinding struct {
	Check    string `json:"check" doc:"Which check found it, such as row_level_security or primary_key."`
	Severity string `json:"severity" doc:"error (the move fails or loses data), warning or info."`
	Object   string `json:"object" doc:"What it is about: a table (schema.name), an extension, a tool; empty for the whole database."`
	Message  string `json:"message" doc:"What is wrong and what it breaks."`
	Fix      string `json:"fix" doc:"How to fix or avoid it."`
}

var Type = steptype.Def[PreflightArgs, PreflightOutput]{
	Summary:    "Finds, before the maintenance window, what makes a dump/restore or replication move fail or silently lose data: tool versions, row-level security, extensions, tables without keys, large objects, locales and more.",
	IsReadOnly: true,
	Fn:         runPreflight,
}

// pfServer is what preflight needs to know about a server and database.
type pfServer struct {
	version                  string // 15.6
	major                    int
	role                     string
	superuser, bypassRLS     bool
	encoding, collate, ctype string
	provider, icuLocale      string // PostgreSQL 15+: libc or icu
	bytes                    int64
	inRecovery               bool
	createDB, createPublic   bool // CREATE on the database and on schema public
}

// pfServerSQL reads the server, the role and the database. to_jsonb(d)
// reads columns that only some versions have (datlocprovider from 15,
// daticulocale in 15 and 16, datlocale from 17) without a query per version.
const pfServerSQL = `
SELECT split_part(current_setting('server_version'), ' ', 1), current_setting('server_version_num')::int / 10000,
	current_user, r.rolsuper, r.rolbypassrls,
	pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text,
	coalesce(to_jsonb(d) ->> 'datlocprovider', 'c'),
	coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', ''),
	pg_database_size(d.oid), pg_is_in_recovery(),
	has_database_privilege(d.oid, 'CREATE'),
	coalesce(has_schema_privilege(to_regnamespace('public'), 'CREATE'), true)
FROM pg_database d, pg_roles r
WHERE d.datname = current_database() AND r.rolname = current_user`

func pfReadServer(ctx context.Context, conn *pgx.Conn) (*pfServer, error) {
	var s pfServer
	err := conn.QueryRow(ctx, pfServerSQL).Scan(&s.version, &s.major, &s.role, &s.superuser, &s.bypassRLS,
		&s.encoding, &s.collate, &s.ctype, &s.provider, &s.icuLocale, &s.bytes, &s.inRecovery, &s.createDB, &s.createPublic)
	return &s, err
}

// preflight collects findings.
type preflight struct {
	out *PreflightOutput
}

func (p *preflight) add(check, severity, object, message, fix string) {
	p.out.Findings = append(p.out.Findings, PreflightFinding{Check: check, Severity: severity, Object: object, Message: message, Fix: fix})
}

func runPreflight(ctx context.Context, env *steptype.Env, a *PreflightArgs) (*PreflightOutput, error) {
	start := time.Now()
	if a.Source == nil {
		return nil, errors.New("preflight: source is required")
	}
	p := &preflight{out: &PreflightOutput{Findings: []PreflightFinding{}}}
	srcConn, err := pgkit.Connect(ctx, env, a.Source, true)
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	defer pgkit.Close(ctx, srcConn)
	src, err := pfReadServer(ctx, srcConn)
	if err != nil {
		return nil, fmt.Errorf("preflight: database %s: %w", a.Source.Name, err)
	}
	p.out.SourceVersion, p.out.SourceBytes = src.version, src.bytes

	var tgtConn *pgx.Conn
	var tgt *pfServer
	if a.Target != nil {
		if tgtConn, err = pgkit.Connect(ctx, env, a.Target, true); err != nil {
			return nil, fmt.Errorf("preflight: %w", err)
		}
		defer pgkit.Close(ctx, tgtConn)
		if tgt, err = pfReadServer(ctx, tgtConn); err != nil {
			return nil, fmt.Errorf("preflight: database %s: %w", a.Target.Name, err)
		}
		p.out.TargetVersion = tgt.version
	}

	p.tools(ctx, env, a, src)
	if err := p.source(ctx, srcConn, src); err != nil {
		return nil, fmt.Errorf("preflight: database %s: %w", a.Source.Name, err)
	}
	if tgt != nil {
		if err := p.target(ctx, srcConn, tgtConn, src, tgt); err != nil {
			return nil, fmt.Errorf("preflight: databases %s and %s: %w", a.Source.Name, a.Target.Name, err)
		}
	}

	if err := p.settings(ctx, srcConn, tgtConn); err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}

	rank := map[string]int{"error": 0, "warning": 1, "info": 2}
	sort.SliceStable(p.out.Findings, func(i, j int) bool {
		a, b := p.out.Findings[i], p.out.Findings[j]
		if rank[a.Severity] != rank[b.Severity] {
			return rank[a.Severity] < rank[b.Severity]
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Object < b.Object
	})
	for _, f := range p.out.Findings {
		switch f.Severity {
		case "error":
			p.out.Errors++
		case "warning":
			p.out.Warnings++
		}
	}
	p.out.OK = p.out.Errors == 0
	p.out.Seconds = time.Since(start).Seconds()
	// Errors and warnings are said, not only recorded: the output is read
	// by assertions, the log by whoever watches the run.
	for _, f := range p.out.Findings {
		if f.Severity == "info" {
			continue
		}
		what := f.Message
		if f.Object != "" {
			what = f.Object + ": " + what
		}
		env.Logf("%s: %s (fix: %s)", f.Severity, what, f.Fix)
	}
	env.Logf("%s, %s, %s in all", plural.Of(p.out.Errors, "error"), plural.Of(p.out.Warnings, "warning"), plural.Of(len(p.out.Findings), "finding"))
	return p.out, nil
}

// tools checks that a pg_dump can dump the source (it refuses servers newer
// than itself) and that a pg_restore can read what that pg_dump writes
// (archives carry the format version of the pg_dump that made them).
func (p *preflight) tools(ctx context.Context, env *steptype.Env, a *PreflightArgs, src *pfServer) {
	given := func(path string) string {
		if path != "" && !filepath.IsAbs(path) && strings.ContainsRune(path, '/') {
			return filepath.Join(env.PlanDir, path) // relative to the plan, as everywhere else
		}
		return path // absolute, empty, or a name looked up in PATH
	}
	dumpVersion, dumpMajor, ok := p.tool(ctx, "pg_dump", given(a.PgDumpPath), src.major,
		fmt.Sprintf("a PostgreSQL %d server", src.major))
	p.out.PgDumpVersion = dumpVersion
	need, what := src.major, fmt.Sprintf("a dump of a PostgreSQL %d server", src.major)
	if ok {
		need, what = dumpMajor, fmt.Sprintf("archives written by pg_dump %s", dumpVersion)
	}
	p.out.PgRestoreVersion, _, _ = p.tool(ctx, "pg_restore", given(a.PgRestorePath), need, what)
}

var pfVersionRe = regexp.MustCompile(`\(PostgreSQL\) (\S+)`)

// tool finds a client tool of at least minMajor (or checks the one given)
// and adds an error finding when there is none.
func (p *preflight) tool(ctx context.Context, name, given string, minMajor int, what string) (string, int, bool) {
	arg := name + "_path"
	path, major := given, 0
	if path == "" {
		var err error
		if path, major, err = pgkit.Tool(ctx, name, minMajor); err != nil {
			p.add(name, "error", name, fmt.Sprintf("no %s can handle %s: %v", name, what, err),
				fmt.Sprintf("install the PostgreSQL %d client tools (or newer) and set %s or %s", minMajor, arg, pgkit.BinDirEnv))
			return "", 0, false
		}
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	m, v := pgkit.MajorRe.FindSubmatch(out), pfVersionRe.FindSubmatch(out)
	if err != nil || m == nil || v == nil {
		p.add(name, "error", path, fmt.Sprintf("cannot run %s --version: %v", path, pfErrOr(err, "no version in its output")),
			fmt.Sprintf("point %s at a working %s", arg, name))
		return "", 0, false
	}
	major, _ = strconv.Atoi(string(m[1]))
	if major < minMajor {
		p.add(name, "error", path, fmt.Sprintf("%s is version %s; %s needs %s %d or newer", path, v[1], what, name, minMajor),
			fmt.Sprintf("install the PostgreSQL %d client tools (apt-get install postgresql-client-%d) and set %s", minMajor, minMajor, arg))
		return string(v[1]), major, false
	}
	return string(v[1]), major, true
}

func pfErrOr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

// pfList is a check that lists objects, one finding each. Its query
// returns the object's display name, its quoted SQL name and a detail;
// message and fix are format strings over those three.
type pfList struct {
	check, severity, sql, message, fix string
	global                             bool // not about relations: no cmpScope and its parameters
}

var pfSourceLists = []pfList{{
	check: "privileges", severity: "error",
	sql: `SELECT format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname),
		CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'S') AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')) AND` + pgkit.UserScope,
	message: "the role cannot read %[3]s %[1]s: pg_dump stops with \"permission denied\"",
	fix:     "GRANT USAGE on its schema and SELECT ON %[2]s to the role, or connect as its owner",
}, {
	check: "extension_schema", severity: "warning",
	sql: `SELECT e.extname, quote_ident(e.extname), n.nspname
	FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE n.nspname NOT IN ('public', 'pg_catalog') AND NOT EXISTS (SELECT FROM pg_available_extension_versions v
		WHERE v.name = e.extname AND v.version = e.extversion AND v.schema = n.nspname)
`,
	global:  true,
	message: "extension %[1]s is installed in schema %[3]s, not public (on Heroku every extension lives in schema heroku_ext): the restore creates schema %[3]s on the target and the extension in it, so the restore works; but the application finds the extension's functions and types unqualified only through a search_path that names %[3]s, usually set with ALTER DATABASE ... SET search_path, which pg_dump and pg_restore do not carry: on the target, such calls fail with \"function ... does not exist\"",
	fix:     "carry the source database's search_path to the target (see the database_settings finding: ALTER DATABASE <target> SET search_path = \"$user\", public, %[3]s, as the target database's owner; copy carries it), or qualify the calls (%[3]s.function(...))",
}, {
	check: "primary_key", severity: "warning",
	sql: `SELECT format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname), ''
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND CASE c.relreplident
		WHEN 'd' THEN NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		WHEN 'i' THEN NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
		WHEN 'n' THEN true ELSE false END AND` + pgkit.UserScope,
	message: "%[1]s has no primary key and no replica identity: once published for logical replication its UPDATEs and DELETEs fail on the source, and chunked checksums have no key to split it by",
	fix:     "add a primary key (ALTER TABLE %[2]s ADD PRIMARY KEY (...)), or ALTER TABLE %[2]s REPLICA IDENTITY FULL when no column set is unique",
}, {
	check: "invalid_index", severity: "warning",
	sql: `SELECT format('%s.%s on %s.%s', n.nspname, ic.relname, n.nspname, c.relname), format('%I.%I', n.nspname, ic.relname), ''
	FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE NOT i.indisvalid AND c.relkind <> 'p' AND` + pgkit.UserScope,
	message: "index %[1]s is invalid (a failed or running CREATE INDEX CONCURRENTLY): pg_dump leaves invalid indexes out, so the target will not have it",
	fix:     "REINDEX INDEX CONCURRENTLY %[2]s on the source, or DROP INDEX CONCURRENTLY %[2]s if it is not needed",
}, {
	check: "unlogged", severity: "info",
	sql: `SELECT format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname), ''
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND` + pgkit.UserScope,
	message: "%[1]s is UNLOGGED: pg_dump copies it, but logical replication and read replicas do not, and a crash or failover empties it",
	fix:     "nothing for a cache; ALTER TABLE %[2]s SET LOGGED if its rows matter",
}}

// pfRowSecuritySQL lists tables whose rows row-level security hides from the
// source role: FORCE'd tables it owns, and tables it does not own. The fix
// must be one the role can run: BYPASSRLS is granted only by a superuser,
// which Heroku never hands out ("must be superuser to change bypassrls
// attribute"), while an owner may turn FORCE off and on again.
const pfRowSecuritySQL = `SELECT format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname),
		pg_has_role(c.relowner, 'USAGE'), c.relforcerowsecurity
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity
		AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AND` + pgkit.UserScope

// pfRowSecurityFinding words the finding of a table pfRowSecuritySQL lists.
func pfRowSecurityFinding(object, ident string, owner, forced bool, role string) (message, fix string) {
	message = fmt.Sprintf("row-level security applies to role %s on %s (%s), and the role is neither superuser nor BYPASSRLS: pg_dump and copy stop with \"query would be affected by row-level security policy\", and tools that read with row security on (pg_dump --enable-row-security, COPY, most replication tools) silently copy only the rows the role may see", role, object, map[bool]string{true: "it FORCEs row level security, which binds even its owner", false: "the role is not its owner"}[owner])
	noForce := fmt.Sprintf("ALTER TABLE %[1]s NO FORCE ROW LEVEL SECURITY", ident)
	force := fmt.Sprintf("ALTER TABLE %[1]s FORCE ROW LEVEL SECURITY", ident)
	switch {
	case owner:
		fix = fmt.Sprintf("as the table's owner (this role), run %s on the source before the move, and %s on the source and on the target once the move is verified; BYPASSRLS is no way out where no superuser is at hand (Heroku: \"must be superuser to change bypassrls attribute\")", noForce+";", force+";")
	case forced:
		fix = fmt.Sprintf("connect as the owner of %s and run %s on the source before the move, and %s on both sides once it is verified (BYPASSRLS needs a superuser to grant, which Heroku does not give)", ident, noForce+";", force+";")
	default:
		fix = fmt.Sprintf("connect as the owner of %s, which row-level security exempts, or GRANT the owner's role to this one (BYPASSRLS needs a superuser to grant, which Heroku does not give)", ident)
	}
	return message, fix
}

// pfTargetRowSecuritySQL lists the source tables that FORCE row-level
// security: the restore (and copy) recreate FORCE on the target, on tables
// the target role then owns, so that role reads them filtered.
const pfTargetRowSecuritySQL = `SELECT format('%s.%s', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname), c.relforcerowsecurity
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND c.relforcerowsecurity AND` + pgkit.UserScope

func (p *preflight) list(ctx context.Context, conn *pgx.Conn, l pfList) error {
	var object, ident, detail string
	scope := []any{[]string{}, []string{}} // every user schema
	if l.global {
		scope = nil
	}
	err := pgkit.Each(ctx, conn, l.sql, scope, []any{&object, &ident, &detail}, func() error {
		p.add(l.check, l.severity, object, fmt.Sprintf(l.message, object, ident, detail), fmt.Sprintf(l.fix, object, ident, detail))
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s check: %w", l.check, err)
	}
	return nil
}

// source runs the checks that need only the source.
func (p *preflight) source(ctx context.Context, conn *pgx.Conn, src *pfServer) error {
	for _, l := range pfSourceLists {
		if l.check == "privileges" && src.superuser {
			continue // superusers read everything
		}
		if err := p.list(ctx, conn, l); err != nil {
			return err
		}
	}
	if !src.superuser && !src.bypassRLS {
		var object, ident string
		var owner, forced bool
		err := pgkit.Each(ctx, conn, pfRowSecuritySQL, []any{[]string{}, []string{}}, []any{&object, &ident, &owner, &forced}, func() error {
			msg, fix := pfRowSecurityFinding(object, ident, owner, forced, src.role)
			p.add("row_level_security", "error", object, msg, fix)
			return nil
		})
		if err != nil {
			return fmt.Errorf("row_level_security check: %w", err)
		}
	}
	var largeObjects int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&largeObjects); err != nil {
		return fmt.Errorf("large objects check: %w", err)
	}
	if largeObjects > 0 {
		p.add("large_objects", "warning", "", fmt.Sprintf("the database holds %d large object(s): pg_dump includes them only in whole-database dumps (not with --table or --schema unless --large-objects), logical replication never copies them, and many copy tools skip them", largeObjects),
			"dump the whole database (or add --large-objects), and compare SELECT count(*) FROM pg_largeobject_metadata on both sides afterwards")
	}
	return nil
}

// target runs the checks that compare the source with the target.
func (p *preflight) target(ctx context.Context, srcConn, tgtConn *pgx.Conn, src, tgt *pfServer) error {
	if tgt.major < src.major {
		p.add("version", "warning", "", fmt.Sprintf("the target runs PostgreSQL %s, older than the source's %s: a dump of a newer server may use syntax and settings the older one rejects", tgt.version, src.version),
			"move to a target of the same or a newer major version, or rehearse the restore and fix what fails")
	}
	if tgt.inRecovery {
		p.add("target_read_only", "error", "", "the target is a standby (in recovery): nothing can be restored into it",
			"point the target at the primary's endpoint, not a read replica")
	}
	if !tgt.superuser && !tgt.createDB {
		p.add("target_privileges", "warning", "database", fmt.Sprintf("role %s lacks CREATE on the target database: restoring any schema but public fails with \"permission denied\"", tgt.role),
			fmt.Sprintf("restore as the database owner, or GRANT CREATE ON DATABASE ... TO %s", tgt.role))
	}
	if !tgt.superuser && !tgt.createPublic {
		p.add("target_privileges", "warning", "public", fmt.Sprintf("role %s lacks CREATE on the target's schema public (PostgreSQL 15 took it away from PUBLIC): restoring its tables fails with \"permission denied\"", tgt.role),
			fmt.Sprintf("restore as the database owner, or GRANT CREATE ON SCHEMA public TO %s", tgt.role))
	}
	for _, d := range []struct{ what, src, tgt, why string }{
		{"encoding", src.encoding, tgt.encoding, "text the target's encoding cannot hold fails to restore, and SQL_ASCII accepts anything unchecked"},
		{"LC_COLLATE", src.collate, tgt.collate, "text sorts differently: ORDER BY results, range queries and which strings a unique index on text treats as distinct can change"},
		{"LC_CTYPE", src.ctype, tgt.ctype, "upper(), lower(), ILIKE and regular expressions classify characters differently"},
		{"locale provider", pfProviderName(src), pfProviderName(tgt), "text sorts differently"},
	} {
		if d.src != d.tgt {
			check := "locale"
			if d.what == "encoding" {
				check = "encoding"
			}
			p.add(check, "warning", d.what, fmt.Sprintf("%s differs: %q on the source, %q on the target: %s", d.what, d.src, d.tgt, d.why),
				"create the target database with the source's settings (CREATE DATABASE ... TEMPLATE template0 ENCODING ... LC_COLLATE ... LC_CTYPE ...), or accept the change after testing the application")
		}
	}
	if err := p.extensions(ctx, srcConn, tgtConn); err != nil {
		return err
	}
	if !tgt.superuser && !tgt.bypassRLS {
		var object, ident string
		var forced bool
		err := pgkit.Each(ctx, srcConn, pfTargetRowSecuritySQL, []any{[]string{}, []string{}}, []any{&object, &ident, &forced}, func() error {
			p.add("target_row_level_security", "warning", object,
				fmt.Sprintf("%s FORCEs row-level security on the source; the restore (and copy) recreate FORCE on the target, where role %s will own the table without BYPASSRLS: whatever reads it as that role (compare, a check, the application) sees only the rows the policies let through, so compare fails at the end of the window although every row arrived", object, tgt.role),
				fmt.Sprintf("as the table's owner on the target, run ALTER TABLE %[1]s NO FORCE ROW LEVEL SECURITY; after the restore, before compare reads it, and ALTER TABLE %[1]s FORCE ROW LEVEL SECURITY; once the move is verified (on the source too when its FORCE was turned off for the move: then the restore brings no FORCE, and only the second statement is needed on the target)", ident))
			return nil
		})
		if err != nil {
			return fmt.Errorf("target_row_level_security check: %w", err)
		}
	}
	var tables int64
	var some string
	err := tgtConn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(name, ', ') FILTER (WHERE rn <= 3), '')
		FROM (SELECT format('%s.%s', n.nspname, c.relname) AS name, row_number() OVER (ORDER BY n.nspname, c.relname) AS rn
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND`+pgkit.UserScope+`) t`, []string{}, []string{}).Scan(&tables, &some)
	if err != nil {
		return fmt.Errorf("target tables check: %w", err)
	}
	p.add("statistics", "info", "", "pg_restore does not copy the planner's statistics (unless pg_dump 18+ ran with --with-statistics): until ANALYZE runs, the target may pick slow plans",
		"run vacuumdb --analyze-in-stages (or ANALYZE) on the target right after the restore, inside the window")
	if tables > 0 {
		p.add("target_not_empty", "warning", "", fmt.Sprintf("the target already holds %s (%s...): is it the right database?", plural.Of(int(tables), "table"), some),
			"restore with --clean --if-exists to replace them, or into an empty database")
	}
	return nil
}

// pfProviderName describes a database's collation provider (PostgreSQL 15+).
func pfProviderName(s *pfServer) string {
	name := map[string]string{"c": "libc", "i": "icu", "b": "builtin"}[s.provider]
	if name == "" {
		name = s.provider
	}
	if s.icuLocale != "" {
		name += " " + s.icuLocale
	}
	return name
}

// extensions checks that every source extension can be created on the
// target: an error when the target server does not offer it at all.
func (p *preflight) extensions(ctx context.Context, srcConn, tgtConn *pgx.Conn) error {
	type ext struct{ name, version string }
	var exts []ext
	var e ext
	err := pgkit.Each(ctx, srcConn, "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1", nil, []any{&e.name, &e.version}, func() error {
		exts = append(exts, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("extensions check: %w", err)
	}
	for _, e := range exts {
		var offered, sameVersion bool
		var dflt string
		err := tgtConn.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(v.version = $2), false), coalesce(max(a.default_version), '')
			FROM pg_available_extensions a LEFT JOIN pg_available_extension_versions v ON v.name = a.name
			WHERE a.name = $1`, e.name, e.version).Scan(&offered, &sameVersion, &dflt)
		if err != nil {
			return fmt.Errorf("extensions check: %w", err)
		}
		switch {
		case !offered:
			p.add("extension_available", "error", e.name, fmt.Sprintf("extension %s %s is installed on the source but the target server does not offer it: its CREATE EXTENSION and everything using it fail to restore", e.name, e.version),
				"install it on the target server (on RDS: check the extensions supported by the engine version), or drop it on the source if nothing uses it")
		case !sameVersion:
			p.add("extension_available", "info", e.name, fmt.Sprintf("extension %s is version %s on the source; the target will create its default version %s", e.name, e.version, dflt),
				"check the extension's release notes between the two versions")
		}
	}
	return nil
}
