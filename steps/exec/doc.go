// Package exec is the exec step type: it runs a command, as an argv or a
// shell script, and captures its exit code and output. It knows nothing of
// databases; what the command may do is the plan author's business.
package exec
