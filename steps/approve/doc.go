// Package approve is the approve step type: a manual gate that asks the
// operator to type yes (--auto-approve passes it). It reads the terminal
// through the Env the engine gives it and nothing else; it must not touch
// a database or decide anything on its own.
package approve
