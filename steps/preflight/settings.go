package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// settings names the source database's settings (ALTER DATABASE ... SET,
// ALTER ROLE ... IN DATABASE ... SET) that the target lacks: pg_dump and
// pg_restore do not carry them, and a lost search_path breaks every
// unqualified call into heroku_ext. tgtConn is nil without a target.
func (p *preflight) settings(ctx context.Context, srcConn, tgtConn *pgx.Conn) error {
	src, err := pgkit.DBSettings(ctx, srcConn)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if len(src) == 0 {
		return nil
	}
	target := "<target database>"
	have := map[string]string{}
	roles := map[string]bool{}
	if tgtConn != nil {
		if err := tgtConn.QueryRow(ctx, "SELECT current_database()").Scan(&target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		tgt, err := pgkit.DBSettings(ctx, tgtConn)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		for _, s := range tgt {
			have[s.Key()] = s.Value
		}
		var names []string
		if err := tgtConn.QueryRow(ctx, "SELECT coalesce(array_agg(rolname::text), '{}') FROM pg_roles").Scan(&names); err != nil {
			return fmt.Errorf("target roles: %w", err)
		}
		for _, n := range names {
			roles[n] = true
		}
	}
	for _, s := range src {
		v, ok := have[s.Key()]
		if ok && v == s.Value {
			continue
		}
		there := ""
		if ok {
			there = fmt.Sprintf(" (the target database sets %s = %s)", s.Name, v)
		}
		why := ""
		if strings.EqualFold(s.Name, "search_path") {
			why = ": without it the target's sessions get the server's default search_path, and unqualified calls to functions and types in the other schemas it names (on Heroku, the extensions in heroku_ext, such as hstore(...)) fail with \"does not exist\""
		}
		if s.Role == "" {
			p.add("database_settings", "warning", s.Name,
				fmt.Sprintf("the source database sets %s for every session; pg_dump/pg_restore do not carry it%s%s", s.Assignment(), there, why),
				fmt.Sprintf("run %s; on the target as its owner (copy does it itself when its role owns the target database)", s.SQL(target)))
			continue
		}
		missing := ""
		if tgtConn != nil && !roles[s.Role] {
			missing = fmt.Sprintf("; the target has no role %s", s.Role)
		}
		p.add("role_settings", "warning", s.Key(),
			fmt.Sprintf("the source database sets %s for role %s (ALTER ROLE ... IN DATABASE); pg_dump/pg_restore do not carry it%s%s%s", s.Assignment(), s.Role, there, missing, why),
			fmt.Sprintf("run %s; on the target as a superuser, a role with CREATEROLE over %s, or %s itself (copy does it where its role may); where the application connects as another role there, give that role the setting instead", s.SQL(target), s.Role, s.Role))
	}
	return nil
}
