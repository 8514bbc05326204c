// Package pgkit is what every step type that talks to PostgreSQL shares:
// opening a connection from the user's connection string (pgx's own
// parser) with the pinned session settings, the libpq parameters handed to
// pg_dump and pg_restore, finding and running those tools and reading
// pg_restore's messages, exporting and importing snapshots, quoting
// identifiers, the catalog scope of user objects, reading sequences,
// turning result values into JSON-ready Go values, and the bounded worker
// pool.
//
// It belongs here when two step types need it and it is about PostgreSQL
// (or running work against it), not about any one type. It must not know
// step types, plans or the engine: it imports only steps/steptype (for Env).
package pgkit
