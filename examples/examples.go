// Package examples embeds the example plans, so that `planrun demo` runs the
// real runbook wherever the binary is.
package examples

import _ "embed"

// HerokuToRDS is examples/heroku-to-rds/plan.hcl.
//
//go:embed heroku-to-rds/plan.hcl
var HerokuToRDS []byte

// ZeroDowntime is examples/zero-downtime/plan.hcl.
//
//go:embed zero-downtime/plan.hcl
var ZeroDowntime []byte

// HerokuZeroDowntime is examples/heroku-zero-downtime/plan.hcl.
//
//go:embed heroku-zero-downtime/plan.hcl
var HerokuZeroDowntime []byte
