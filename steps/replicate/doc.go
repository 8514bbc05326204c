// Package replicate is the replicate step type: logical replication from
// the source to the target for a zero-downtime move — start (publication,
// slot, subscription, initial copy by the subscription or by the copy
// type), catch_up (the cut-over barrier) and stop (also its rollback).
//
// It creates and drops only what it names (publication, slot,
// subscription). Its initial copy goes through copy's exported entry point,
// the one deliberate edge between two step types.
package replicate
