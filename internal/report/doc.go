// Package report turns one recorded run and the plan as it is now into a
// document for a change ticket or a post-mortem: Build makes the Doc (its
// JSON form is versioned), WriteMarkdown renders it, and WriteHTML renders
// one or two runs as a self-contained page with a timeline drawn from
// their records (timeline.go). It reads only what it
// is given — no store, no files, no flags — and prints nothing; choosing
// the run, redacting the result and writing it out are the CLI's.
package report
