package replicate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

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
		return steptype.Refused(fmt.Errorf("source %s: %d table(s) have no primary key and no replica identity: %s. Once published, every UPDATE and DELETE on them "+
			"would fail on the source (\"cannot update table because it does not have a replica identity and publishes updates\"). "+
			"Add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (every change then carries the whole row), or leave them out with tables = [...]; "+
			"nothing was created", r.srcName, len(keyless), strings.Join(keyless, ", ")))
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
		r.env.Logf("created publication %s on %s (%s)", r.pub, r.srcName, plural.Of(len(published), "table"))
	} else {
		r.env.Logf("publication %s on %s already exists with these settings (%s)", r.pub, r.srcName, plural.Of(len(published), "table"))
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
		return steptype.Refused(fmt.Errorf("target %s lacks %d published table(s): %s. Logical replication copies rows, not the schema: "+
			"restore the schema first (pg_dump --schema-only, then pg_restore), or let initial_copy = \"copy\" create it in an empty target; nothing was created",
			r.dstName, len(missing), strings.Join(missing, ", ")))
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
