package replicate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are cut silently.
const maxIdentLen = 63

// publish creates the publication if absent (or checks that the one there
// has the settings asked for), refuses tables whose UPDATE and DELETE would
// fail once published, and checks that the target has every published
// table. It all happens in one source transaction, so a refusal leaves no
// publication behind; which tables are published is PostgreSQL's own
// answer (pg_publication_tables), partitions included.
//
// forCopy: the copy step will create the tables (initial_copy = "copy"),
// so the target must lack them instead.
func (r *replication) publish(ctx context.Context, forCopy bool) error {
	want, err := r.resolveTables(ctx)
	if err != nil {
		return err
	}
	r.wanted = want
	tx, err := r.src.Begin(ctx)
	if err != nil {
		return fmt.Errorf("source %s: begin: %w", r.srcName, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = tx.Rollback(cctx)
	}()
	exists, err := r.checkPublication(ctx, tx, want)
	if err != nil {
		return err
	}
	if !exists {
		stmt := "CREATE PUBLICATION " + pgkit.QuoteIdent(r.pub) + " FOR ALL TABLES"
		if len(want) > 0 {
			quoted := make([]string, len(want))
			for i, t := range want {
				quoted[i] = pgkit.Qualified(t.schema, t.name)
			}
			stmt = "CREATE PUBLICATION " + pgkit.QuoteIdent(r.pub) + " FOR TABLE " + strings.Join(quoted, ", ")
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("source %s: create publication %s: %w", r.srcName, r.pub, err)
		}
	}

	// Published tables whose UPDATE/DELETE the source would refuse:
	// PostgreSQL needs a replica identity to publish them.
	var keyless []string
	var name string
	err = pgkit.Each(ctx, tx, `SELECT format('%s.%s', n.nspname, c.relname)
		FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1 AND CASE c.relreplident
			WHEN 'd' THEN NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
			WHEN 'i' THEN NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
			WHEN 'n' THEN true ELSE false END
		ORDER BY 1`, []any{r.pub}, []any{&name}, func() error {
		keyless = append(keyless, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: check replica identities: %w", r.srcName, err)
	}
	if len(keyless) > 0 {
		return fmt.Errorf("source %s: %d table(s) have no primary key and no replica identity: %s. Once published, every UPDATE and DELETE on them "+
			"would fail on the source (\"cannot update table because it does not have a replica identity and publishes updates\"). "+
			"Add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (every change then carries the whole row), or leave them out with tables = [...]; "+
			"nothing was created", r.srcName, len(keyless), strings.Join(keyless, ", "))
	}

	rows, err := tx.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, r.pub)
	if err != nil {
		return fmt.Errorf("source %s: list published tables: %w", r.srcName, err)
	}
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("source %s: list published tables: %w", r.srcName, err)
	}
	if forCopy {
		if err := r.checkTargetForCopy(ctx); err != nil {
			return err
		}
	} else if err := r.checkTargetHas(ctx, published); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("source %s: create publication %s: %w", r.srcName, r.pub, err)
	}
	r.published = published
	if !exists {
		r.createdPub = true
		r.out.Created = append(r.out.Created, "publication "+r.pub)
		r.env.Logf("created publication %s on %s (%d tables)", r.pub, r.srcName, len(published))
	} else {
		r.env.Logf("publication %s on %s already exists with these settings (%d tables)", r.pub, r.srcName, len(published))
	}
	return nil
}

// checkTargetHas refuses a target that lacks a published table.
func (r *replication) checkTargetHas(ctx context.Context, published []string) error {
	rows, err := r.dst.Query(ctx, `SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL ORDER BY 1`, published)
	if err != nil {
		return fmt.Errorf("target %s: look for the published tables: %w", r.dstName, err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target %s: look for the published tables: %w", r.dstName, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("target %s lacks %d published table(s): %s. Logical replication copies rows, not the schema: "+
			"restore the schema first (pg_dump --schema-only, then pg_restore), or let initial_copy = \"copy\" create it in an empty target; nothing was created",
			r.dstName, len(missing), strings.Join(missing, ", "))
	}
	return nil
}

// replTable is a table named in tables, as the source resolved it.
type replTable struct{ schema, name string }

func (t replTable) String() string { return t.schema + "." + t.name }

// resolveTables resolves tables on the source as PostgreSQL does
// (to_regclass: quoting, case folding, the search path), sorted.
func (r *replication) resolveTables(ctx context.Context) ([]replTable, error) {
	var out []replTable
	var missing, notTables []string
	for _, given := range r.a.Tables {
		var t replTable
		var kind string
		err := r.src.QueryRow(ctx, `SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, given).Scan(&t.schema, &t.name, &kind)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			missing = append(missing, given)
			continue
		case err != nil:
			return nil, fmt.Errorf("tables: %q: %w", given, err)
		case kind != "r" && kind != "p":
			notTables = append(notTables, given)
			continue
		}
		out = append(out, t)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("tables: source %s has no table %s", r.srcName, strings.Join(missing, ", "))
	}
	if len(notTables) > 0 {
		return nil, fmt.Errorf("tables: %s: not a table (only tables can be published)", strings.Join(notTables, ", "))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// checkPublication reports whether the publication exists, and fails when
// it does with other settings than asked for.
func (r *replication) checkPublication(ctx context.Context, tx pgx.Tx, want []replTable) (bool, error) {
	var oid uint32
	var all, ins, upd, del, trunc, viaRoot bool
	err := tx.QueryRow(ctx, `SELECT p.oid, p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete,
		coalesce((to_jsonb(p) ->> 'pubtruncate')::bool, true), coalesce((to_jsonb(p) ->> 'pubviaroot')::bool, false)
		FROM pg_publication p WHERE p.pubname = $1`, r.pub).Scan(&oid, &all, &ins, &upd, &del, &trunc, &viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("source %s: read publication %s: %w", r.srcName, r.pub, err)
	}
	var diffs []string
	if !ins || !upd || !del || !trunc {
		var pubs []string
		for _, p := range []struct {
			on   bool
			name string
		}{{ins, "insert"}, {upd, "update"}, {del, "delete"}, {trunc, "truncate"}} {
			if p.on {
				pubs = append(pubs, p.name)
			}
		}
		diffs = append(diffs, fmt.Sprintf("it publishes only %q, not every change", strings.Join(pubs, ", ")))
	}
	if viaRoot {
		diffs = append(diffs, "it has publish_via_partition_root = true")
	}
	switch {
	case all && len(want) > 0:
		diffs = append(diffs, "it is FOR ALL TABLES, not for the tables given")
	case !all && len(want) == 0:
		diffs = append(diffs, "it is for a list of tables, not FOR ALL TABLES")
	case !all:
		rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname FROM pg_publication_rel pr
			JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE pr.prpubid = $1`, oid)
		if err != nil {
			return false, fmt.Errorf("source %s: read publication %s: %w", r.srcName, r.pub, err)
		}
		has, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
			var t replTable
			err := row.Scan(&t.schema, &t.name)
			return t.String(), err
		})
		if err != nil {
			return false, fmt.Errorf("source %s: read publication %s: %w", r.srcName, r.pub, err)
		}
		wanted := make([]string, len(want))
		for i, t := range want {
			wanted[i] = t.String()
		}
		if extra, lacking := setDiff(has, wanted), setDiff(wanted, has); len(extra)+len(lacking) > 0 {
			d := "its tables differ:"
			if len(lacking) > 0 {
				d += " it lacks " + strings.Join(lacking, ", ")
			}
			if len(extra) > 0 {
				d += " it also has " + strings.Join(extra, ", ")
			}
			diffs = append(diffs, d)
		}
	}
	if len(diffs) > 0 {
		return true, fmt.Errorf("source %s already has a publication %s with other settings: %s. Drop it (action = \"stop\") or name another publication",
			r.srcName, r.pub, strings.Join(diffs, "; "))
	}
	return true, nil
}

// setDiff returns the elements of a not in b, sorted.
func setDiff(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// subscribe creates the subscription (and with it the slot on the source)
// or checks the one there.
func (r *replication) subscribe(ctx context.Context, existing *subInfo) error {
	conninfo, err := r.conninfo()
	if err != nil {
		return err
	}
	if existing != nil {
		return r.reuseSubscription(ctx, existing, conninfo)
	}
	slotExists, err := r.slotExists(ctx)
	if err != nil {
		return err
	}
	if slotExists {
		return fmt.Errorf("source %s already has a replication slot %s, and target %s has no subscription %s using it: another target may use it; "+
			"give another slot, or if it is a leftover, drop it on the source: SELECT pg_drop_replication_slot('%s')", r.srcName, r.slot, r.dstName, r.sub, r.slot)
	}
	if r.copyData {
		if err := r.checkTargetEmpty(ctx); err != nil {
			return err
		}
	}
	if err := r.createSubscription(ctx, conninfo, true); err != nil {
		return err
	}
	if r.copyData {
		r.out.InitialCopy = "subscription"
	}
	return nil
}

// createSubscription creates the subscription: with createSlot, its slot
// too (CREATE SUBSCRIPTION makes it); without, on the slot that exists.
func (r *replication) createSubscription(ctx context.Context, conninfo string, createSlot bool) error {
	var stmt string
	err := r.dst.QueryRow(ctx, `SELECT format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I WITH (slot_name = %L, copy_data = %s, create_slot = %s, enabled = true)',
		$1::text, $2::text, $3::text, $4::text, $5::text, $6::text)`, r.sub, conninfo, r.pub, r.slot, fmt.Sprint(r.copyData), fmt.Sprint(createSlot)).Scan(&stmt)
	if err != nil {
		return fmt.Errorf("target %s: create subscription %s: %w", r.dstName, r.sub, redactErr(err, conninfo))
	}
	if createSlot {
		r.env.Logf("creating subscription %s on %s (slot %s on %s); it waits for transactions open on the source to end", r.sub, r.dstName, r.slot, r.srcName)
	} else {
		r.env.Logf("creating subscription %s on %s, on slot %s on %s", r.sub, r.dstName, r.slot, r.srcName)
	}
	// Not in a transaction block: CREATE SUBSCRIPTION creates the slot
	// through a connection of its own and refuses to run inside one.
	if _, err := r.dst.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("target %s: create subscription %s: %w", r.dstName, r.sub, redactErr(err, conninfo))
	}
	r.createdSub = true
	r.out.Created = append(r.out.Created, "subscription "+r.sub)
	if createSlot {
		r.out.Created = append(r.out.Created, "slot "+r.slot)
	}
	return nil
}

// reuseSubscription checks that a subscription found on a re-run is the
// one asked for, and enables it if it was disabled.
func (r *replication) reuseSubscription(ctx context.Context, s *subInfo, conninfo string) error {
	var diffs []string
	if len(s.publications) != 1 || s.publications[0] != r.pub {
		diffs = append(diffs, fmt.Sprintf("it subscribes to publication(s) %s, not %s", strings.Join(s.publications, ", "), r.pub))
	}
	if s.slot == "" {
		diffs = append(diffs, "it has no slot (slot_name = NONE)")
	} else if r.slotGiven && s.slot != r.slot {
		diffs = append(diffs, fmt.Sprintf("its slot is %s, not %s", s.slot, r.slot))
	}
	// subconninfo is readable by superusers only; others skip this check.
	var current string
	if err := r.dst.QueryRow(ctx, "SELECT subconninfo FROM pg_subscription WHERE oid = $1", s.oid).Scan(&current); err == nil {
		if have, want := conninfoWhere(current), conninfoWhere(conninfo); have != want {
			diffs = append(diffs, fmt.Sprintf("it connects to %s, not %s", have, want))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("target %s already has a subscription %s with other settings: %s. Drop it (action = \"stop\") or name another subscription",
			r.dstName, r.sub, strings.Join(diffs, "; "))
	}
	var slotExists bool
	if err := r.src.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", s.slot).Scan(&slotExists); err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	if !slotExists {
		return fmt.Errorf("subscription %s in target %s uses slot %s, which source %s no longer has: the changes since it went are lost; "+
			"run action = \"stop\", empty the target's tables and start again", r.sub, r.dstName, s.slot, r.srcName)
	}
	if !s.enabled {
		if _, err := r.dst.Exec(ctx, "ALTER SUBSCRIPTION "+pgkit.QuoteIdent(r.sub)+" ENABLE"); err != nil {
			return fmt.Errorf("target %s: enable subscription %s: %w", r.dstName, r.sub, err)
		}
		r.env.Logf("subscription %s was disabled: enabled it", r.sub)
	}
	r.env.Logf("subscription %s on %s already exists with these settings (slot %s)", r.sub, r.dstName, s.slot)
	return nil
}

// checkTargetEmpty refuses target tables that already hold rows: the
// initial copy would add the source's rows to them.
func (r *replication) checkTargetEmpty(ctx context.Context) error {
	var full []string
	batch := &pgx.Batch{}
	for _, t := range r.published {
		batch.Queue("SELECT EXISTS (SELECT FROM ONLY " + t + ")").QueryRow(func(row pgx.Row) error {
			var has bool
			if err := row.Scan(&has); err != nil {
				return fmt.Errorf("read %s: %w", t, err)
			}
			if has {
				full = append(full, t)
			}
			return nil
		})
	}
	if err := r.dst.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	if len(full) > 0 {
		return fmt.Errorf("target %s: %d table(s) already hold rows: %s. The initial copy (copy_data = true) would add the source's rows to them "+
			"(duplicate keys): empty them (TRUNCATE), or set copy_data = false if they already hold the source's rows as of now", r.dstName, len(full), strings.Join(full, ", "))
	}
	return nil
}

// conninfo is the connection string the target server uses to reach the
// source: source_conninfo, or one built from the source's URL. Its password
// is registered as a secret.
func (r *replication) conninfo() (string, error) {
	if r.a.SourceConninfo != "" {
		kv, err := parseConninfo(r.a.SourceConninfo)
		if err != nil {
			return "", fmt.Errorf("source_conninfo: %w", err)
		}
		if p := kv["password"]; p != "" && r.env != nil && r.env.Secrets != nil {
			r.env.Secrets(p)
		}
		return r.a.SourceConninfo, nil
	}
	cfg, err := pgkit.ConnConfig(r.env, r.a.Source, false)
	if err != nil {
		return "", err
	}
	parts := []string{
		"host=" + conninfoQuote(cfg.Host),
		fmt.Sprintf("port=%d", cfg.Port),
		"dbname=" + conninfoQuote(cfg.Database),
		"user=" + conninfoQuote(cfg.User),
	}
	if cfg.Password != "" {
		parts = append(parts, "password="+conninfoQuote(cfg.Password))
	}
	// TLS settings pass through as the user wrote them.
	given, _ := parseConninfo(r.a.Source.URL)
	for _, k := range []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcompression", "connect_timeout", "target_session_attrs"} {
		if v, ok := given[k]; ok {
			parts = append(parts, k+"="+conninfoQuote(v))
		}
	}
	return strings.Join(parts, " "), nil
}

// conninfoQuote quotes a libpq keyword/value value.
func conninfoQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// parseConninfo reads a libpq connection string (a postgres:// URL or
// keyword/value pairs) into its keywords. Errors never quote the string: it
// may hold a password.
func parseConninfo(s string) (map[string]string, error) {
	kv := map[string]string{}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, errors.New("cannot parse the connection URL")
		}
		if h := u.Hostname(); h != "" {
			kv["host"] = h
		}
		if p := u.Port(); p != "" {
			kv["port"] = p
		}
		if d := strings.TrimPrefix(u.Path, "/"); d != "" {
			kv["dbname"] = d
		}
		if u.User != nil {
			kv["user"] = u.User.Username()
			if p, ok := u.User.Password(); ok {
				kv["password"] = p
			}
		}
		for k, v := range u.Query() {
			if len(v) > 0 {
				kv[k] = v[len(v)-1]
			}
		}
		return kv, nil
	}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return kv, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if i == len(s) || s[i] != '=' || key == "" {
			return nil, errors.New(`cannot parse the connection string: expected keyword=value pairs or a postgres:// URL`)
		}
		i++ // =
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					v.WriteByte(s[i])
					i++
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("cannot parse the connection string: the value of %s has no closing quote", key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		kv[key] = v.String()
	}
}

// conninfoWhere names where a connection string leads, without its password.
func conninfoWhere(conninfo string) string {
	kv, err := parseConninfo(conninfo)
	if err != nil {
		return "(an unreadable connection string)"
	}
	port := kv["port"]
	if port == "" {
		port = "5432"
	}
	return fmt.Sprintf("%s@%s:%s/%s", kv["user"], kv["host"], port, kv["dbname"])
}

// redactErr keeps a secret out of an error's message. An error that does
// not quote it is returned as it is, cause and all.
func redactErr(err error, secrets ...string) error {
	msg := err.Error()
	changed := msg
	for _, s := range secrets {
		if s != "" {
			changed = strings.ReplaceAll(changed, s, "(sensitive)")
		}
	}
	if kv, perr := parseConninfo(strings.Join(secrets, " ")); perr == nil && kv["password"] != "" {
		changed = strings.ReplaceAll(changed, kv["password"], "(sensitive)")
	}
	if changed == msg {
		return err
	}
	return errors.New(changed)
}

// defaultSlotName derives a slot name that two targets of one source do
// not share: the subscription and target database names, and a hash of
// the target's address (two servers may both have a database "app").
func defaultSlotName(sub, targetDB, targetAddr string) string {
	sum := sha256.Sum256([]byte(sub + "\x00" + targetDB + "\x00" + targetAddr))
	suffix := "_" + hex.EncodeToString(sum[:4])
	var b strings.Builder
	for _, c := range strings.ToLower(sub + "_" + targetDB) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	base := b.String()
	if room := maxIdentLen - len(suffix); len(base) > room {
		base = base[:room]
	}
	return base + suffix
}

// checkSlotName enforces PostgreSQL's rule for slot names.
func checkSlotName(name string) error {
	if name == "" || len(name) > maxIdentLen {
		return fmt.Errorf("slot %q: a slot name has 1 to %d characters", name, maxIdentLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("slot %q: a slot name has only lower-case letters, digits and _", name)
		}
	}
	return nil
}

// dropSubscription drops the subscription; DROP SUBSCRIPTION connects to
// the source to drop the slot too. When it cannot (the target no longer
// reaches the source), the subscription is detached from its slot and
// dropped, and the slot is dropped through planrun's own connection.
func (r *replication) dropSubscription(ctx context.Context, s *subInfo) error {
	_, err := r.dst.Exec(ctx, "DROP SUBSCRIPTION IF EXISTS "+pgkit.QuoteIdent(r.sub))
	if err == nil {
		r.out.Dropped = append(r.out.Dropped, "subscription "+r.sub)
		if s.slot != "" {
			r.out.Dropped = append(r.out.Dropped, "slot "+s.slot)
		}
		r.env.Logf("dropped subscription %s on %s and its slot %s on %s", r.sub, r.dstName, s.slot, r.srcName)
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("target %s: drop subscription %s: %w", r.dstName, r.sub, err)
	}
	r.env.Logf("DROP SUBSCRIPTION %s failed (%v): detaching it from its slot and dropping the slot from here", r.sub, err)
	for _, stmt := range []string{
		"ALTER SUBSCRIPTION " + pgkit.QuoteIdent(r.sub) + " DISABLE",
		"ALTER SUBSCRIPTION " + pgkit.QuoteIdent(r.sub) + " SET (slot_name = NONE)",
		"DROP SUBSCRIPTION " + pgkit.QuoteIdent(r.sub),
	} {
		if _, err2 := r.dst.Exec(ctx, stmt); err2 != nil {
			return fmt.Errorf("target %s: drop subscription %s: %w (after %v)", r.dstName, r.sub, err2, err)
		}
	}
	r.out.Dropped = append(r.out.Dropped, "subscription "+r.sub)
	// The table-sync slots of an initial copy cut short.
	rows, err := r.src.Query(ctx, `SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE $1`, fmt.Sprintf(`pg\_%d\_sync\_%%`, s.oid))
	if err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	syncSlots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	for _, slot := range append([]string{s.slot}, syncSlots...) {
		if err := r.dropSlot(ctx, slot, false); err != nil {
			return err
		}
	}
	return nil
}

// dropSlot drops a logical slot of the source database. A leftover (a slot
// no subscription of the target names) still in use is someone else's and
// stays; a subscription's slot in use is waited for: its sender exits
// when the subscription goes.
func (r *replication) dropSlot(ctx context.Context, slot string, leftover bool) error {
	if slot == "" {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ours, active bool
		err := r.src.QueryRow(ctx, `SELECT database = current_database() AND slot_type = 'logical', active
			FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&ours, &active)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("source %s: read replication slot %s: %w", r.srcName, slot, err)
		}
		if !ours || (active && leftover) {
			r.env.Logf("left replication slot %s on %s alone: it is in use or belongs to another database", slot, r.srcName)
			return nil
		}
		if !active {
			if _, err := r.src.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "42704" { // gone meanwhile
					return nil
				}
				if !(errors.As(err, &pgErr) && pgErr.Code == "55006") { // not "is active": a real failure
					return fmt.Errorf("source %s: drop replication slot %s: %w", r.srcName, slot, err)
				}
			} else {
				r.out.Dropped = append(r.out.Dropped, "slot "+slot)
				r.env.Logf("dropped replication slot %s on %s", slot, r.srcName)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("source %s: replication slot %s is still in use after 30s: find its sender in pg_stat_replication", r.srcName, slot)
		}
		if err := steptype.Pause(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("source %s: drop replication slot %s: %w", r.srcName, slot, err)
		}
	}
}

// dropPublication drops the publication, unless other logical slots of the
// source database remain: another target may still stream through it.
func (r *replication) dropPublication(ctx context.Context) error {
	var exists bool
	var others []string
	err := r.src.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1),
		coalesce((SELECT array_agg(slot_name::text ORDER BY slot_name) FROM pg_replication_slots
			WHERE database = current_database() AND slot_type = 'logical' AND plugin = 'pgoutput'
			AND slot_name <> $2 AND slot_name NOT LIKE 'pg\_%\_sync\_%'), '{}')`, r.pub, r.slot).Scan(&exists, &others)
	if err != nil {
		return fmt.Errorf("source %s: read publication %s: %w", r.srcName, r.pub, err)
	}
	if !exists {
		return nil
	}
	if len(others) > 0 {
		r.env.Logf("kept publication %s on %s: other subscriptions may use it through slot(s) %s", r.pub, r.srcName, strings.Join(others, ", "))
		return nil
	}
	if _, err := r.src.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgkit.QuoteIdent(r.pub)); err != nil {
		return fmt.Errorf("source %s: drop publication %s: %w", r.srcName, r.pub, err)
	}
	r.out.Dropped = append(r.out.Dropped, "publication "+r.pub)
	r.env.Logf("dropped publication %s on %s", r.pub, r.srcName)
	return nil
}

// waitCaughtUp waits until every table's initial copy is done (all
// pg_subscription_rel states 'r'), then takes the source's current WAL
// position and waits until the slot's confirmed_flush_lsn has reached it:
// the subscriber confirms a position only once everything committed before
// it is applied and flushed on the target.
func (r *replication) waitCaughtUp(ctx context.Context) error {
	s, err := r.subscription(ctx)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("subscription %s vanished from target %s", r.sub, r.dstName)
	}
	deadline := time.Now().Add(r.maxWait)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	giveUp := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if wctx.Err() != nil {
			return fmt.Errorf("gave up after %s (max_wait %s): %s", time.Since(r.start).Round(time.Second), r.maxWait, what)
		}
		return err
	}
	errorsAt, err := r.workerErrors(wctx, s.oid)
	if err != nil {
		return giveUp("reading the subscription's errors", err)
	}
	checkErrors := func() error {
		n, err := r.workerErrors(wctx, s.oid)
		if err != nil {
			return err
		}
		if n-errorsAt >= replicateErrorLimit {
			return fmt.Errorf("the subscription's workers on target %s failed %d times while waiting: the target server's log says why "+
				"(such as a duplicate key: rows already on the target; or a permission or connection error reaching the source)", r.dstName, n-errorsAt)
		}
		return nil
	}

	pause, maxPause := 50*time.Millisecond, time.Second
	nextPause := func() time.Duration {
		p := pause
		pause = min(2*pause, maxPause)
		return p
	}
	lastLog := time.Time{}
	// 1. The initial copy.
	for {
		var total, ready int
		err := r.dst.QueryRow(wctx, `SELECT count(*), count(*) FILTER (WHERE srsubstate = 'r') FROM pg_subscription_rel WHERE srsubid = $1`, s.oid).Scan(&total, &ready)
		if err != nil {
			return giveUp("waiting for the initial copy", fmt.Errorf("target %s: read the tables' states: %w", r.dstName, err))
		}
		r.out.Tables = total
		if ready == total {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			r.env.Logf("initial copy: %d of %d tables ready", ready, total)
			lastLog = time.Now()
		}
		r.progress(event.Progress{Unit: "tables", Done: int64(ready), Total: int64(total), Message: "initial copy"})
		if err := checkErrors(); err != nil {
			return giveUp(fmt.Sprintf("initial copy: %d of %d tables ready", ready, total), err)
		}
		if err := steptype.Pause(wctx, nextPause()); err != nil {
			return giveUp(fmt.Sprintf("initial copy: %d of %d tables ready", ready, total), err)
		}
	}
	r.env.Logf("initial copy done: %d tables ready", r.out.Tables)

	// 2. The barrier.
	lsn, canNudge, err := r.barrier(wctx)
	if err != nil {
		return giveUp("reading the source's WAL position", err)
	}
	// Polled more often: this is the cut-over, when every second counts.
	pause, maxPause = 50*time.Millisecond, 200*time.Millisecond
	var firstLag int64 = -1
	barrierAt := time.Now()
	for {
		var reached bool
		var lag, behind int64
		err := r.src.QueryRow(wctx, `SELECT coalesce(confirmed_flush_lsn >= $1::pg_lsn, false),
			greatest(coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0), 0)::bigint,
			greatest(coalesce(pg_wal_lsn_diff($1::pg_lsn, confirmed_flush_lsn), 0), 0)::bigint
			FROM pg_replication_slots WHERE slot_name = $2`, lsn, r.slot).Scan(&reached, &lag, &behind)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("source %s has no replication slot %s: the subscription cannot catch up; run action = \"stop\" and start again", r.srcName, r.slot)
		}
		if err != nil {
			return giveUp(fmt.Sprintf("waiting for the target to reach %s", lsn), fmt.Errorf("source %s: read slot %s: %w", r.srcName, r.slot, err))
		}
		r.out.LagBytes = lag
		if firstLag < 0 {
			firstLag = behind
		}
		if reached {
			r.out.CaughtUpLSN = lsn
			r.progress(event.Progress{Unit: "bytes", Done: firstLag, Total: firstLag, Message: "caught up"})
			r.env.Logf("caught up: target %s has applied everything source %s wrote before %s (now %d bytes behind)", r.dstName, r.srcName, lsn, lag)
			return nil
		}
		if time.Since(lastLog) > 5*time.Second {
			r.env.Logf("catching up to %s: %d bytes behind it", lsn, behind)
			lastLog = time.Now()
		}
		r.progress(event.Progress{Unit: "bytes", Done: max(firstLag-behind, 0), Total: firstLag, Message: "catching up"})
		what := fmt.Sprintf("the target did not reach the source's WAL position %s (%d bytes behind it)", lsn, behind)
		if err := checkErrors(); err != nil {
			return giveUp(what, err)
		}
		if canNudge && time.Since(barrierAt) > 100*time.Millisecond {
			if err := r.nudge(wctx); err != nil {
				return giveUp(what, err)
			}
		}
		if err := steptype.Pause(wctx, nextPause()); err != nil {
			return giveUp(what, err)
		}
	}
}

// workerErrors is how many times the subscription's apply and table-sync
// workers have failed (PostgreSQL 15+; 0 before).
func (r *replication) workerErrors(ctx context.Context, subOID uint32) (int64, error) {
	if r.dstMajor < 15 {
		return 0, nil
	}
	var n int64
	err := r.dst.QueryRow(ctx, `SELECT coalesce(sum(apply_error_count + sync_error_count), 0)::bigint FROM pg_stat_subscription_stats WHERE subid = $1`, subOID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("target %s: read the subscription's errors: %w", r.dstName, err)
	}
	return n, nil
}

func (r *replication) progress(p event.Progress) {
	if r.env != nil && r.env.Progress != nil {
		r.env.Progress(p)
	}
}

// barrier returns a source WAL position after every transaction committed
// so far: the end of a logical decoding message planrun writes (pgoutput
// does not send it on, but the slot's confirmed position passes it once
// the subscriber has applied everything before it). Found by experiment:
// pg_current_wal_lsn() is not such a position. It is where WAL has been
// written to the kernel, and a commit made with synchronous_commit = off
// may still sit in the WAL buffers, beyond it; the slot then "reaches" the
// position before the commit is even sent. pg_current_wal_insert_lsn()
// includes such commits, but at a page boundary it points past the next
// page's header, which the WAL may not reach until something else is
// written. A role that may not write messages gets the insert position.
func (r *replication) barrier(ctx context.Context) (lsn string, canNudge bool, err error) {
	err = r.src.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'planrun', 'catch_up')::text").Scan(&lsn)
	canNudge = err == nil
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient privilege
		err = r.src.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn)
	}
	if err != nil {
		return "", false, fmt.Errorf("source %s: read the WAL position: %w", r.srcName, err)
	}
	return lsn, canNudge, nil
}

// nudge writes another tiny message while waiting. Found by experiment: a
// subscriber confirms a position only once its own commit of the changes
// is flushed, and after that it reports again when the sender pings it
// (each time the sender catches up with new WAL) or on its own about once a
// second. New WAL makes the sender ping, which cut catch_up from 0.4-0.8s
// to about 0.1s in the tests; it costs the source a few dozen bytes of WAL
// per poll.
func (r *replication) nudge(ctx context.Context) error {
	if _, err := r.src.Exec(ctx, "SELECT pg_logical_emit_message(false, 'planrun', 'nudge')"); err != nil {
		return fmt.Errorf("source %s: write a WAL message: %w", r.srcName, err)
	}
	return nil
}
