package copy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
)

// phaseSettings carries the source database's settings to the target
// database: ALTER DATABASE ... SET for every session (search_path above
// all, which on Heroku names heroku_ext), and ALTER ROLE ... IN DATABASE
// ... SET for the roles the target has. pg_dump writes neither into an
// archive made without --create, and pg_restore never. The target role
// may set the database's when it owns it, a role's when it is that role
// (or a superuser, or has CREATEROLE over it); what it may not is said,
// statement by statement, in the log and in settings_left, for someone
// who may. Each statement is idempotent: a resumed run sets them again.
func (c *copyRun) phaseSettings(ctx context.Context) error {
	c.out.Settings, c.out.SettingsLeft = []string{}, []string{}
	if len(c.settings) == 0 {
		return nil
	}
	dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, dst)
	var database string
	var roles []string
	if err := dst.QueryRow(ctx, "SELECT pg_catalog.current_database(), (SELECT coalesce(array_agg(rolname::text), '{}') FROM pg_catalog.pg_roles)").Scan(&database, &roles); err != nil {
		return fmt.Errorf("settings: target %s: %w", c.o.dst.Name, err)
	}
	exists := map[string]bool{}
	for _, r := range roles {
		exists[r] = true
	}
	for _, s := range c.settings {
		stmt := s.SQL(database)
		if s.Role != "" && !exists[s.Role] {
			c.out.SettingsLeft = append(c.out.SettingsLeft, stmt+";")
			c.env.Logf("settings: the target has no role %s; once it has (or for the role the application uses there), run: %s;", s.Role, stmt)
			continue
		}
		if _, err := dst.Exec(ctx, stmt); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				return fmt.Errorf("settings: target %s: %s: %w", c.o.dst.Name, stmt, err)
			}
			c.out.SettingsLeft = append(c.out.SettingsLeft, stmt+";")
			c.env.Logf("settings: the target role may not run this (%s); run it as the target database's owner or a superuser: %s;", pe.Message, stmt)
			continue
		}
		c.out.Settings = append(c.out.Settings, stmt+";")
		c.env.Logf("settings: %s", stmt)
	}
	return nil
}

// readSettings reads the source database's settings in the snapshot.
func (c *copyRun) readSettings(ctx context.Context, tx pgx.Tx) error {
	var err error
	if c.settings, err = pgkit.DBSettings(ctx, tx); err != nil {
		return fmt.Errorf("source %s: %w", c.o.src.Name, err)
	}
	return nil
}

// warnForcedRowSecurity says which copied tables FORCE row-level security
// on the target where its role owns them without BYPASSRLS: the copy
// wrote every row (COPY FROM ran before post-data enabled the policies),
// but whatever reads them as that role — compare, a check, the
// application — sees only the rows the policies let through.
func (c *copyRun) warnForcedRowSecurity(ctx context.Context) error {
	dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, dst)
	rows, err := dst.Query(ctx, `
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND c.relforcerowsecurity AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
  AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user)
ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("target %s: row-level security: %w", c.o.dst.Name, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target %s: row-level security: %w", c.o.dst.Name, err)
	}
	for _, n := range names {
		c.env.Logf("warning: %s FORCEs row-level security on the target, whose role owns it without BYPASSRLS: every row was copied, but compare and anything else reading it as that role see only the rows its policies let through; "+
			"as the owner, run ALTER TABLE %s NO FORCE ROW LEVEL SECURITY; before compare and ALTER TABLE %s FORCE ROW LEVEL SECURITY; once the move is verified", n, n, n)
	}
	return nil
}
