package capture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
)

// table is a captured table.
type table struct {
	id           int
	oid          uint32
	schema, name string
	key          []string // the primary key's (or the unique NOT NULL key's) columns
	columns      []string // what the log carries of a row: every column but generated ones, in order
	fingerprint  string
	apply        *applySQL // on the target
	exists       bool      // on the source, now
	printsAlike  bool      // start: no column's text depends on the session's settings
	keyAt        []int     // where each key column is in columns (-1: not logged); set with apply
}

func (t *table) String() string { return t.schema + "." + t.name }

// matchColumns are what a row is found by on the target: its key, or
// every column of a table without one (full_row_match). The triggers
// log them as the old row's key.
func (t *table) matchColumns() []string {
	if len(t.key) == 0 {
		return t.columns
	}
	return t.key
}

func (t *table) qualified() string { return pgkit.Qualified(t.schema, t.name) }

// fingerprintSQL is a digest of what the replay relies on in the table c:
// its name, its columns with their types, nullability and generation,
// and its unique indexes. Any DDL that changes one changes it.
const fingerprintSQL = `pg_catalog.md5(n.nspname || '.' || c.relname || '|' ||
	coalesce((SELECT string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || a.attgenerated::text, ', ' ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || '|' ||
	coalesce((SELECT string_agg(pg_catalog.pg_get_indexdef(i.indexrelid), '; ' ORDER BY 1)
		FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisunique), ''))`

// keySQL is the key capture matches rows by in the table c: the primary
// key, else the narrowest valid unique index without expressions or a
// predicate whose columns are all NOT NULL; NULL when there is none.
const keySQL = `(SELECT array_agg(a.attname::text ORDER BY k.ord)
	FROM pg_catalog.unnest((SELECT i.indkey::int2[] FROM pg_catalog.pg_index i
		WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a2 WHERE a2.attrelid = c.oid AND a2.attnum = ANY (i.indkey::int2[]) AND NOT a2.attnotnull)
		ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1)) WITH ORDINALITY k(attnum, ord)
	JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)`

// settingsFreeSQL says whether no column of the table c prints by the
// session's date, interval or float settings: none of those types, nor
// an array, domain, composite or range over one (point prints float8s).
// The trigger of such a table need not pin them, which costs every row.
const settingsFreeSQL = `NOT EXISTS (WITH RECURSIVE deps(typ) AS (
		SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		UNION
		SELECT l.x FROM deps d JOIN pg_catalog.pg_type t ON t.oid = d.typ, LATERAL (
			SELECT t.typelem WHERE t.typelem <> 0
			UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0
			UNION ALL SELECT a2.atttypid FROM pg_catalog.pg_attribute a2 WHERE t.typrelid <> 0 AND a2.attrelid = t.typrelid AND a2.attnum > 0 AND NOT a2.attisdropped
			UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
			UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid) l(x))
	SELECT FROM deps WHERE typ IN ('date'::regtype, 'time'::regtype, 'timetz'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype,
		'interval'::regtype, 'float4'::regtype, 'float8'::regtype, 'money'::regtype))`

// discover resolves the tables to capture on the source: those given, or
// every ordinary table the role owns. It refuses (the caller marks it a
// refusal) tables without a key, naming them.
func (r *run) discover(ctx context.Context) ([]*table, error) {
	var oids []uint32
	for _, name := range r.a.Tables {
		var oid *uint32
		if err := r.src.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1)::oid", name).Scan(&oid); err != nil {
			return nil, fmt.Errorf("source %s: tables: %q: %w", r.srcName, name, err)
		}
		if oid == nil {
			return nil, fmt.Errorf("source %s: tables: there is no table %q", r.srcName, name)
		}
		oids = append(oids, *oid)
	}
	rows, err := r.src.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind::text, pg_catalog.pg_has_role(c.relowner, 'USAGE'), coalesce(`+keySQL+`, '{}'),
	coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '{}'), `+fingerprintSQL+`, `+settingsFreeSQL+`
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE CASE WHEN cardinality($1::oid[]) > 0 THEN c.oid = ANY ($1::oid[]) ELSE
	c.relkind = 'r' AND pg_catalog.pg_has_role(c.relowner, 'USAGE') AND n.nspname <> $2
	AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
	AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') END
ORDER BY 2, 3`, oids, schema)
	if err != nil {
		return nil, fmt.Errorf("source %s: list the tables: %w", r.srcName, err)
	}
	var out []*table
	var noKey, notTable, notOwned []string
	for rows.Next() {
		t := &table{}
		var kind string
		var owned bool
		if err := rows.Scan(&t.oid, &t.schema, &t.name, &kind, &owned, &t.key, &t.columns, &t.fingerprint, &t.printsAlike); err != nil {
			rows.Close()
			return nil, fmt.Errorf("source %s: list the tables: %w", r.srcName, err)
		}
		switch {
		case kind != "r":
			notTable = append(notTable, t.String())
		case !owned:
			notOwned = append(notOwned, t.String())
		case len(t.key) == 0 && !r.a.FullRowMatch:
			noKey = append(noKey, t.String())
		case len(t.key) == 0:
			r.fullRow = append(r.fullRow, t.String())
		}
		t.id, t.exists = len(out)+1, true
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("source %s: list the tables: %w", r.srcName, err)
	}
	var problems []string
	if len(noKey) > 0 {
		problems = append(problems, fmt.Sprintf("%s %s no primary key and no unique key on NOT NULL columns: its UPDATEs and DELETEs could not be matched on the target by key. Add a primary key, leave it out with tables, or set full_row_match = true (rows matched by every column)",
			strings.Join(noKey, ", "), plural.Choose(len(noKey), "has", "have")))
	}
	if len(notTable) > 0 {
		problems = append(problems, fmt.Sprintf("%s: not an ordinary table (a partitioned table is captured by its partitions; name them)", strings.Join(notTable, ", ")))
	}
	if len(notOwned) > 0 {
		problems = append(problems, fmt.Sprintf("%s: not owned by the source's role, which cannot create triggers on it", strings.Join(notOwned, ", ")))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("source %s: cannot capture %s; nothing was created", r.srcName, strings.Join(problems, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source %s: no table to capture (the role owns none; name them with tables)", r.srcName)
	}
	return out, nil
}

// install creates the schema, the registry, the log, the functions and
// the triggers, in one transaction: all of it or nothing. Creating a
// trigger waits for the transactions that have written to its table
// (SHARE ROW EXCLUSIVE), so once it commits every later write is logged
// and every earlier one is committed, in any snapshot taken after.
func (r *run) install(ctx context.Context, tables []*table) error {
	var b strings.Builder
	q := pgkit.QuoteIdent(schema)
	fmt.Fprintf(&b, `CREATE SCHEMA %[1]s;
COMMENT ON SCHEMA %[1]s IS 'planrun capture: change log and triggers for a move; planrun capture action = "stop" removes it';
CREATE TABLE %[1]s.tables (id int PRIMARY KEY, rel oid NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
	key_columns text[] NOT NULL, columns text[] NOT NULL, fingerprint text NOT NULL);
CREATE TABLE %[1]s.log (
	pos bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	tab int NOT NULL,
	op "char" NOT NULL,
	old_key text[],
	new_row text[]);
CREATE FUNCTION %[1]s.truncated() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	INSERT INTO %[1]s.log (tab, op) VALUES (TG_ARGV[0]::int, 'T');
	RETURN NULL;
END $f$;
CREATE FUNCTION %[1]s.fence() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
	RAISE EXCEPTION 'planrun: writes to %%.%% are fenced for a cut-over', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = '25006', HINT = 'The database is moving; planrun capture action = "unfence" lifts the fence.';
END $f$;
`, q)
	for _, t := range tables {
		fmt.Fprintf(&b, "INSERT INTO %s.tables VALUES (%d, %d, %s, %s, %s, %s, %s);\n", q, t.id, t.oid,
			literal(t.schema), literal(t.name), literal("{"+quoteArrayItems(t.key)+"}"), literal("{"+quoteArrayItems(t.columns)+"}"), literal(t.fingerprint))
		var oldKey, keyNew, newRow []string
		for _, k := range t.matchColumns() {
			oldKey = append(oldKey, "OLD."+pgkit.QuoteIdent(k)+"::text")
			keyNew = append(keyNew, "NEW."+pgkit.QuoteIdent(k)+"::text")
		}
		for _, c := range t.columns {
			newRow = append(newRow, "NEW."+pgkit.QuoteIdent(c)+"::text")
		}
		// ENABLE ALWAYS: a session with session_replication_role =
		// replica (a superuser's pg_restore, say) would otherwise write
		// without being captured.
		// One function per table, each value as text: a NULL stays a
		// NULL (jsonb would not tell a JSON null from it), and the key
		// is read by name, not by a conversion of the whole OLD row
		// (which would detoast every value). The settings that change
		// how values print are pinned, where a column prints by them or
		// rows are matched by their text (full_row_match: bytea too):
		// each SET costs every row. SECURITY DEFINER: writers other
		// than the owner need no rights on the log; search_path pinned
		// so that they cannot redirect it.
		pin := "SET search_path = pg_catalog, pg_temp"
		if !t.printsAlike || len(t.key) == 0 {
			pin += " SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres' SET extra_float_digits = 3 SET bytea_output = 'hex'"
		}
		fmt.Fprintf(&b, `CREATE FUNCTION %[1]s.t%[2]d() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
	%[9]s AS $f$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO %[1]s.log (tab, op, new_row) VALUES (%[2]d, 'I', ARRAY[%[5]s]);
	ELSIF TG_OP = 'UPDATE' THEN
		IF ARRAY[%[3]s] IS DISTINCT FROM ARRAY[%[4]s] THEN
			INSERT INTO %[1]s.log (tab, op, old_key, new_row) VALUES (%[2]d, 'U', ARRAY[%[3]s], ARRAY[%[5]s]);
		ELSE
			INSERT INTO %[1]s.log (tab, op, new_row) VALUES (%[2]d, 'U', ARRAY[%[5]s]);
		END IF;
	ELSE
		INSERT INTO %[1]s.log (tab, op, old_key) VALUES (%[2]d, 'D', ARRAY[%[3]s]);
	END IF;
	RETURN NULL;
END $f$;
CREATE TRIGGER %[6]s AFTER INSERT OR UPDATE OR DELETE ON %[7]s FOR EACH ROW EXECUTE FUNCTION %[1]s.t%[2]d();
CREATE TRIGGER %[8]s AFTER TRUNCATE ON %[7]s FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.truncated('%[2]d');
ALTER TABLE %[7]s ENABLE ALWAYS TRIGGER %[6]s, ENABLE ALWAYS TRIGGER %[8]s;
`, q, t.id, strings.Join(oldKey, ", "), strings.Join(keyNew, ", "), strings.Join(newRow, ", "),
			pgkit.QuoteIdent(triggerPrefix+"_row"), t.qualified(), pgkit.QuoteIdent(triggerPrefix+"_truncate"), pin)
	}
	return r.withLocks(ctx, "create the change log and the triggers", tables, b.String())
}

// withLocks runs script in one transaction whose every lock waits at most
// lock_timeout, and tries again until lockBudget has passed. While DDL
// waits for a table's lock, the application's writes to it queue behind
// it; and if the DDL already holds another table that a waiting writer
// needs, the two deadlock: PostgreSQL then kills one, after
// deadlock_timeout (1s by default), possibly the writer. A short wait,
// tried again, gives way first.
func (r *run) withLocks(ctx context.Context, what string, tables []*table, script string) error {
	var err error
	budget := time.Now().Add(max(lockBudget, 10*r.lockWait))
	order := make([]string, len(tables))
	for i, t := range tables {
		order[i] = t.qualified()
	}
	for try := 1; ; try++ {
		// Every table first, then the DDL: a writer that holds one table
		// and waits for another that this transaction holds would be
		// waited for in vain. The order changes at every try, so that
		// one that matches the application's comes up.
		lock := ""
		if len(order) > 0 {
			if try > 1 {
				rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			lock = "LOCK TABLE " + strings.Join(order, ", ") + " IN SHARE ROW EXCLUSIVE MODE;\n"
		}
		err = r.execTx(ctx, lock+script)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "55P03" && pgErr.Code != "40P01") || time.Now().After(budget) { // lock_not_available, deadlock_detected
			break
		}
		if try%10 == 1 {
			r.env.Logf("%s on %s: %v; trying again", what, r.srcName, pgErr.Message)
		}
		if perr := pauseFor(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond); perr != nil {
			return perr
		}
	}
	if err != nil {
		return fmt.Errorf("source %s: %s (the application's transactions held the tables' locks for lock_timeout %s at every try, for %s): %w",
			r.srcName, what, r.lockWait, max(lockBudget, 10*r.lockWait), err)
	}
	return nil
}

func (r *run) execTx(ctx context.Context, script string) error {
	tx, err := r.src.Begin(ctx)
	if err != nil {
		return err
	}
	defer pgkit.Rollback(ctx, tx)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", r.lockWait.Milliseconds())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, script, pgx.QueryExecModeSimpleProtocol); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func pauseFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// literal quotes an SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteArrayItems writes items as the elements of an array literal.
func quoteArrayItems(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return strings.Join(out, ",")
}

// capturing says whether the source has capture's schema.
func capturing(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1)", schema).Scan(&ok)
	return ok, err
}

// registry reads the captured tables from the source.
func (r *run) registry(ctx context.Context) error {
	ok, err := capturing(ctx, r.src)
	if err != nil {
		return fmt.Errorf("source %s: %w", r.srcName, err)
	}
	if !ok {
		return fmt.Errorf("source %s has no schema %s: nothing is captured; run capture with action = \"start\" first", r.srcName, schema)
	}
	// The names as they are now: stop runs also after a table was renamed.
	rows, err := r.src.Query(ctx, `SELECT t.id, t.rel, coalesce(n.nspname, t.schema_name), coalesce(c.relname, t.table_name), t.key_columns, t.columns, t.fingerprint, c.oid IS NOT NULL
	FROM `+pgkit.QuoteIdent(schema)+`.tables t LEFT JOIN pg_catalog.pg_class c ON c.oid = t.rel LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY t.id`)
	if err != nil {
		return fmt.Errorf("source %s: read the captured tables: %w", r.srcName, err)
	}
	r.tables, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*table, error) {
		t := &table{}
		return t, row.Scan(&t.id, &t.oid, &t.schema, &t.name, &t.key, &t.columns, &t.fingerprint, &t.exists)
	})
	if err != nil {
		return fmt.Errorf("source %s: read the captured tables: %w", r.srcName, err)
	}
	r.out.Tables = r.out.Tables[:0]
	for _, t := range r.tables {
		r.out.Tables = append(r.out.Tables, t.String())
	}
	return nil
}

// checkDefinitions fails when a captured table's definition changed
// since start: replaying into the target's older definition would drop
// or garble values without a word.
func (r *run) checkDefinitions(ctx context.Context) error {
	rows, err := r.src.Query(ctx, `SELECT t.schema_name || '.' || t.table_name, t.fingerprint,
	coalesce((SELECT `+fingerprintSQL+` FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t.rel), 'dropped')
	FROM `+pgkit.QuoteIdent(schema)+`.tables t ORDER BY t.id`)
	if err != nil {
		return fmt.Errorf("source %s: check the captured tables' definitions: %w", r.srcName, err)
	}
	var changed, dropped []string
	var name, was, now string
	_, err = pgx.ForEachRow(rows, []any{&name, &was, &now}, func() error {
		switch {
		case now == "dropped":
			dropped = append(dropped, name)
		case now != was:
			changed = append(changed, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: check the captured tables' definitions: %w", r.srcName, err)
	}
	if len(changed)+len(dropped) == 0 {
		return nil
	}
	sort.Strings(changed)
	var what []string
	if len(changed) > 0 {
		what = append(what, fmt.Sprintf("%s changed (a column added, dropped, renamed or retyped, a key or unique index changed, or the table renamed)", strings.Join(changed, ", ")))
	}
	if len(dropped) > 0 {
		what = append(what, strings.Join(dropped, ", ")+" dropped")
	}
	return fmt.Errorf("DDL during the sync: on source %s, %s since capture started. The target still has the old definition, and replaying into it could lose or garble data, so the sync stops here. "+
		"Run capture with action = \"stop\" (it removes the capture from the source), empty the target, and start again; freeze schema changes until the cut-over",
		r.srcName, strings.Join(what, "; "))
}

// dropSource removes everything capture made on the source: dropping
// the schema drops the functions, and with them (CASCADE) the triggers
// that call them, the fence included.
func (r *run) dropSource(ctx context.Context) (bool, error) {
	ok, err := capturing(ctx, r.src)
	if err != nil || !ok {
		return false, err
	}
	var present []*table
	for _, t := range r.tables {
		if t.exists {
			present = append(present, t)
		}
	}
	return true, r.withLocks(ctx, "drop schema "+schema, present, "DROP SCHEMA IF EXISTS "+pgkit.QuoteIdent(schema)+" CASCADE")
}
