package copy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// uncreatable lists what the schema's restore would fail to create on the
// target for want of a privilege or of the server's support: a schema the
// target lacks that its role may not create (no CREATE on the database),
// a schema the copied tables go into where it may not create them (no
// CREATE on it, as schema public since PostgreSQL 15 for a role that does
// not own the database), an extension the target server does not offer.
func (c *copyRun) uncreatable(ctx context.Context) ([]string, error) {
	whole := len(c.o.tables) == 0 // pg_dump --table brings no schemas or extensions
	var schemas, exts []string
	if whole {
		rows, err := c.snap.tx.Query(ctx, `
SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname !~ '^pg_' AND n.nspname <> $1
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1`, c.o.skipSchema)
		if err != nil {
			return nil, fmt.Errorf("source %s: list the schemas: %w", c.o.src.Name, err)
		}
		if schemas, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, fmt.Errorf("source %s: list the schemas: %w", c.o.src.Name, err)
		}
		rows, err = c.snap.tx.Query(ctx, "SELECT extname::text FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
		if err != nil {
			return nil, fmt.Errorf("source %s: list the extensions: %w", c.o.src.Name, err)
		}
		if exts, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, fmt.Errorf("source %s: list the extensions: %w", c.o.src.Name, err)
		}
	}
	tableSchemas := map[string]bool{}
	var into []string // the schemas tables are created in
	for _, t := range c.all {
		if !tableSchemas[t.schema] {
			tableSchemas[t.schema] = true
			into = append(into, t.schema)
		}
	}

	dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return nil, err
	}
	defer pgkit.Close(ctx, dst)
	var role, database string
	var superuser, createDB bool
	if err := dst.QueryRow(ctx, `SELECT current_user, pg_catalog.current_database(), r.rolsuper,
		pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE')
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&role, &database, &superuser, &createDB); err != nil {
		return nil, fmt.Errorf("target %s: read the role: %w", c.o.dst.Name, err)
	}
	if superuser {
		return nil, nil
	}
	var problems []string
	created := map[string]bool{} // schemas the restore creates, owned by the role
	for _, s := range schemas {
		var exists bool
		if err := dst.QueryRow(ctx, "SELECT pg_catalog.to_regnamespace($1) IS NOT NULL", pgkit.QuoteIdent(s)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("target %s: %w", c.o.dst.Name, err)
		}
		if exists {
			continue
		}
		created[s] = true
		if !createDB {
			problems = append(problems, fmt.Sprintf("schema %s: the target lacks it and role %s may not create it; fix: as the target database's owner, GRANT CREATE ON DATABASE %s TO %s; (or CREATE SCHEMA %s AUTHORIZATION %s;)",
				s, role, pgkit.QuoteIdent(database), pgkit.QuoteIdent(role), pgkit.QuoteIdent(s), pgkit.QuoteIdent(role)))
		}
	}
	for _, s := range into {
		if created[s] {
			continue
		}
		var exists, may bool
		if err := dst.QueryRow(ctx, `SELECT n.oid IS NOT NULL, coalesce(pg_catalog.has_schema_privilege(n.oid, 'CREATE'), false)
			FROM (SELECT pg_catalog.to_regnamespace($1) AS oid) n`, pgkit.QuoteIdent(s)).Scan(&exists, &may); err != nil {
			return nil, fmt.Errorf("target %s: %w", c.o.dst.Name, err)
		}
		switch {
		case !exists && !whole:
			problems = append(problems, fmt.Sprintf("schema %s: the target lacks it, and a copy of some tables does not create schemas; fix: CREATE SCHEMA %s; on the target", s, pgkit.QuoteIdent(s)))
		case exists && !may:
			problems = append(problems, fmt.Sprintf("schema %s: role %s may not create tables in it; fix: as its owner, GRANT CREATE ON SCHEMA %s TO %s;", s, role, pgkit.QuoteIdent(s), pgkit.QuoteIdent(role)))
		}
	}
	for _, e := range exts {
		var offered bool
		if err := dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = $1)", e).Scan(&offered); err != nil {
			return nil, fmt.Errorf("target %s: %w", c.o.dst.Name, err)
		}
		if !offered {
			problems = append(problems, fmt.Sprintf("extension %s: the target server does not offer it, so its CREATE EXTENSION and everything using it fail to restore; fix: install it on the target server, or drop it on the source if nothing uses it", e))
		}
	}
	return problems, nil
}
