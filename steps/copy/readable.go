package copy

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// checkBeforeWriting finds everything that would make the copy fail for
// want of a privilege, before the first write: what the source role cannot
// read (unreadable) and what the target role cannot create (uncreatable).
// It refuses naming every one, so that one round of fixes is enough.
func (c *copyRun) checkBeforeWriting(ctx context.Context) error {
	role, problems, err := c.unreadable(ctx)
	if err != nil {
		return err
	}
	var target []string
	if !c.state.resumed { // a resumed copy's target holds its schema already
		if target, err = c.uncreatable(ctx); err != nil {
			return err
		}
	}
	if len(problems)+len(target) == 0 {
		return nil
	}
	for _, p := range problems {
		c.env.Logf("cannot read %s", p)
	}
	for _, p := range target {
		c.env.Logf("cannot create %s", p)
	}
	var msg []string
	if len(problems) > 0 {
		msg = append(msg, fmt.Sprintf("source %s: role %s cannot read everything the copy must read:\n%s", c.o.src.Name, role, strings.Join(problems, "\n")))
	}
	if len(target) > 0 {
		msg = append(msg, fmt.Sprintf("target %s: its role cannot create everything the copy must create:\n%s", c.o.dst.Name, strings.Join(target, "\n")))
	}
	return fmt.Errorf("nothing was written to the target; %s", strings.Join(msg, "\n"))
}

// unreadable finds, in the snapshot and before anything is written,
// every selected table, sequence and large object that the source role
// cannot read completely: without it the copy would stop on the first one
// after filling most of the target. A table row-level security applies to
// is unreadable too: copy reads with row_security off, so COPY stops with
// "query would be affected by row-level security policy" (with it on, rows
// would be lost silently). Each is named with a fix the role's owner can
// run; BYPASSRLS needs a superuser, which Heroku never hands out.
func (c *copyRun) unreadable(ctx context.Context) (role string, problems []string, err error) {
	var privileged bool
	if err := c.snap.tx.QueryRow(ctx, `SELECT current_user, rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&role, &privileged); err != nil {
		return "", nil, fmt.Errorf("source %s: read the role: %w", c.o.src.Name, err)
	}
	var schemas, names []string
	data := map[string]bool{} // tables whose rows are read (not partitioned parents)
	for _, t := range c.all {
		schemas, names = append(schemas, t.schema), append(names, t.name)
	}
	for _, t := range c.tables {
		data[t.key()] = true
	}
	rows, err := c.snap.tx.Query(ctx, `
SELECT n.nspname, c.relname, pg_catalog.format('%I.%I', n.nspname, c.relname),
       pg_catalog.has_schema_privilege(n.oid, 'USAGE'), pg_catalog.has_table_privilege(c.oid, 'SELECT'),
       c.relrowsecurity, c.relforcerowsecurity, pg_catalog.pg_has_role(c.relowner, 'USAGE'), c.relowner::pg_catalog.regrole::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])) -- not qualified: the form of many arrays is syntax
ORDER BY 1, 2`, schemas, names)
	if err != nil {
		return "", nil, fmt.Errorf("source %s: check the tables can be read: %w", c.o.src.Name, err)
	}
	var schema, name, ident, owner string
	var usage, readable, rls, force, owns bool
	_, err = pgx.ForEachRow(rows, []any{&schema, &name, &ident, &usage, &readable, &rls, &force, &owns, &owner}, func() error {
		switch {
		case !usage || !readable:
			var grants []string
			if !usage {
				grants = append(grants, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s;", pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()))
			}
			if !readable {
				grants = append(grants, fmt.Sprintf("GRANT SELECT ON %s TO %s;", ident, pgx.Identifier{role}.Sanitize()))
			}
			problems = append(problems, fmt.Sprintf("%s.%s: role %s may not read it (permission denied); fix: as its owner %s, %s or copy as %s",
				schema, name, role, owner, strings.Join(grants, " "), owner))
		case rls && data[schema+"."+name] && !privileged && force && owns:
			problems = append(problems, fmt.Sprintf("%s.%s: FORCE ROW LEVEL SECURITY binds even its owner, %s, who lacks BYPASSRLS; fix: as the owner, ALTER TABLE %s NO FORCE ROW LEVEL SECURITY; before the copy, and ALTER TABLE %s FORCE ROW LEVEL SECURITY; on the source and on the target after it is verified",
				schema, name, role, ident, ident))
		case rls && data[schema+"."+name] && !privileged && !owns:
			fix := fmt.Sprintf("copy as its owner %s, whom row-level security exempts", owner)
			if force {
				fix = fmt.Sprintf("copy as its owner %s after ALTER TABLE %s NO FORCE ROW LEVEL SECURITY; (and FORCE again on both sides after the copy)", owner, ident)
			}
			problems = append(problems, fmt.Sprintf("%s.%s: row-level security applies to role %s, which neither owns it nor has BYPASSRLS; fix: %s", schema, name, role, fix))
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("source %s: check the tables can be read: %w", c.o.src.Name, err)
	}
	if c.o.sequences {
		rows, err := c.snap.tx.Query(ctx, `
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relowner::pg_catalog.regrole::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')
  AND NOT (pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_sequence_privilege(c.oid, 'SELECT'))
ORDER BY 1`)
		if err != nil {
			return "", nil, fmt.Errorf("source %s: check the sequences can be read: %w", c.o.src.Name, err)
		}
		_, err = pgx.ForEachRow(rows, []any{&ident, &owner}, func() error {
			problems = append(problems, fmt.Sprintf("sequence %s: role %s may not read it; fix: as its owner %s, GRANT SELECT ON SEQUENCE %s TO %s, or set sequences = false",
				ident, role, owner, ident, pgx.Identifier{role}.Sanitize()))
			return nil
		})
		if err != nil {
			return "", nil, fmt.Errorf("source %s: check the sequences can be read: %w", c.o.src.Name, err)
		}
	}
	if c.o.largeObjects && !c.state.LargeObjectsDone {
		// Without lo_compat_privileges, reading a large object takes
		// ownership or a SELECT grant on it.
		var unreadable int64
		err := c.snap.tx.QueryRow(ctx, `
SELECT count(*) FROM pg_catalog.pg_largeobject_metadata m
WHERE NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
  AND NOT pg_catalog.current_setting('lo_compat_privileges')::bool
  AND NOT pg_catalog.pg_has_role(m.lomowner, 'USAGE')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(m.lomacl) a
                  WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE')))`).Scan(&unreadable)
		if err != nil {
			return "", nil, fmt.Errorf("source %s: check the large objects can be read: %w", c.o.src.Name, err)
		}
		if unreadable > 0 {
			problems = append(problems, fmt.Sprintf("%d large object(s): role %s may not read them; fix: GRANT SELECT ON LARGE OBJECT ... TO %s as their owners, copy as their owner, or set large_objects = false",
				unreadable, role, pgx.Identifier{role}.Sanitize()))
		}
	}
	return role, problems, nil
}
