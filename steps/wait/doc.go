// Package wait is the wait step type: it runs a probe — another step type,
// run through the Env (RunNested) — until a condition on its output holds,
// or gives up. It imports no other type.
package wait
