package replicate

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// gaps lists what logical replication leaves out, for the output and the log.
func (r *replication) gaps(ctx context.Context) error {
	lists := []struct {
		kind, sql, note string
		copied          string // the note when the copy step made the initial copy
		allTablesOnly   bool
	}{{
		kind:          "unlogged_tables",
		sql:           `SELECT format('%s.%s', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND` + replScope + ` ORDER BY 1`,
		note:          "unlogged tables are never published: copy their rows another way at cut-over, or ALTER TABLE ... SET LOGGED on the source if they matter",
		copied:        "unlogged tables are never published: the initial copy has their rows as of its snapshot, not the changes since; copy them again at cut-over, or ALTER TABLE ... SET LOGGED on the source if they matter",
		allTablesOnly: true,
	}, {
		kind: "sequences",
		sql:  `SELECT format('%s.%s', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND` + replScope + ` ORDER BY 1`,
		note: "sequence values are not replicated: set them at cut-over, after writes stop, with a sequences step",
	}, {
		kind:   "materialized_views",
		sql:    `SELECT format('%s.%s', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND` + replScope + ` ORDER BY 1`,
		note:   "materialized views are not replicated: REFRESH MATERIALIZED VIEW on the target at cut-over",
		copied: "materialized views are not replicated: the initial copy refreshed them as of its snapshot; REFRESH MATERIALIZED VIEW on the target at cut-over",
	}}
	for _, l := range lists {
		if l.allTablesOnly && len(r.a.Tables) > 0 {
			continue
		}
		rows, err := r.src.Query(ctx, l.sql)
		if err != nil {
			return fmt.Errorf("source %s: list %s: %w", r.srcName, l.kind, err)
		}
		objects, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("source %s: list %s: %w", r.srcName, l.kind, err)
		}
		if len(objects) > 0 {
			note := l.note
			if r.out.InitialCopy == "copy" && l.copied != "" {
				note = l.copied
			}
			r.addGap(l.kind, objects, len(objects), note)
		}
	}
	var largeObjects int
	if err := r.src.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&largeObjects); err != nil {
		return fmt.Errorf("source %s: count large objects: %w", r.srcName, err)
	}
	if largeObjects > 0 {
		note := "large objects are not replicated: copy them at cut-over (pg_dump --large-objects --data-only of them, or the copy step)"
		if r.out.InitialCopy == "copy" && r.copy.LargeObjects() {
			note = "large objects are not replicated: the initial copy has them as of its snapshot, not those created or changed since; copy those at cut-over"
		}
		r.addGap("large_objects", []string{}, largeObjects, note)
	}
	r.addGap("schema_changes", []string{}, 0, "DDL is not replicated: freeze schema changes until the cut-over, or apply each one to the target first, then the source")
	return nil
}

func (r *replication) addGap(kind string, objects []string, count int, note string) {
	r.out.NotReplicated = append(r.out.NotReplicated, ReplicateGap{Kind: kind, Objects: objects, Count: count, Note: note})
	if kind == "schema_changes" {
		return
	}
	shown := objects
	if len(shown) > 5 {
		shown = append(shown[:5:5], "...")
	}
	what := ""
	if len(shown) > 0 {
		what = " (" + strings.Join(shown, ", ") + ")"
	}
	r.env.Logf("not replicated: %d %s%s: %s", count, strings.ReplaceAll(kind, "_", " "), what, note)
}

// replScope keeps user relations c in namespace n (no system, toast or
// temporary schemas, nothing that belongs to an extension).
const replScope = `
	n.nspname NOT IN ('pg_catalog', 'information_schema')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
	AND NOT EXISTS (SELECT FROM pg_depend d
		WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`
