// Package pgdump holds the pg_dump and pg_restore step types: running the
// PostgreSQL tools with the user's connection (the password through the
// environment, never the command line) and judging pg_restore's messages,
// so that a restore fails only on errors that leave it incomplete. It does
// not speak the protocol itself; reading the tools' output is pgkit's,
// shared with copy.
package pgdump
