// Package sql is the sql step type: one statement with parameters, a
// script or a .sql file, run on a database, its last rows returned. In a
// check it runs in one read-only transaction and refuses statements that
// would end it.
package sql
