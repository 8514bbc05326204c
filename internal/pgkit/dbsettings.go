package pgkit

import (
	"context"
	"fmt"
	"strings"
)

// DBSetting is a default that a database gives its sessions: for every
// role (ALTER DATABASE ... SET, Role "") or for one role in it (ALTER ROLE
// ... IN DATABASE ... SET). pg_dump writes them only with --create, and
// pg_restore into an existing database never, so a move loses them unless
// someone carries them (preflight names them, copy carries them, compare
// compares them).
type DBSetting struct {
	Role, Name, Value string // Value as the catalog holds it
}

// dbSettingsSQL reads the current database's settings, database-wide ones
// first. pg_db_role_setting is readable by every role.
const dbSettingsSQL = `
SELECT coalesce(r.rolname, ''), split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
FROM pg_catalog.pg_db_role_setting s
JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase AND d.datname = pg_catalog.current_database()
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) c
WHERE s.setrole = 0 OR r.oid IS NOT NULL
ORDER BY 1, 2`

// DBSettings reads the settings of the database q is connected to.
func DBSettings(ctx context.Context, q Querier) ([]DBSetting, error) {
	var out []DBSetting
	var s DBSetting
	err := Each(ctx, q, dbSettingsSQL, nil, []any{&s.Role, &s.Name, &s.Value}, func() error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("database settings (pg_db_role_setting): %w", err)
	}
	return out, nil
}

// Key names the setting apart from its value: "search_path", or
// "role alice: search_path".
func (s DBSetting) Key() string {
	if s.Role == "" {
		return s.Name
	}
	return "role " + s.Role + ": " + s.Name
}

// Assignment is "name = value" as SQL: list settings (search_path...) as
// the catalog holds them, a list of quoted identifiers; others a literal.
func (s DBSetting) Assignment() string {
	v := s.Value
	switch {
	case dbListSettings[strings.ToLower(s.Name)] && v == `""`:
		v = "''" // an empty list: "" would be a zero-length identifier
	case !dbListSettings[strings.ToLower(s.Name)]:
		v = "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return s.Name + " = " + v
}

// SQL is the statement that gives database (a name, not quoted) the
// setting.
func (s DBSetting) SQL(database string) string {
	if s.Role == "" {
		return "ALTER DATABASE " + QuoteIdent(database) + " SET " + s.Assignment()
	}
	return "ALTER ROLE " + QuoteIdent(s.Role) + " IN DATABASE " + QuoteIdent(database) + " SET " + s.Assignment()
}

// dbListSettings are the settings whose values PostgreSQL keeps as lists
// of quoted identifiers (GUC_LIST_QUOTE; pg_dump's list is the same).
var dbListSettings = map[string]bool{
	"search_path": true, "temp_tablespaces": true, "session_preload_libraries": true,
	"local_preload_libraries": true, "shared_preload_libraries": true, "unix_socket_directories": true,
}
