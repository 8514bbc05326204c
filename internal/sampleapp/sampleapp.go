// Package sampleapp creates the sample shop database that the demo migrates
// and the tests and benchmarks check: several schemas and the column types,
// sequences, indexes and constraints that migrations get wrong.
package sampleapp

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"text/template"

	"github.com/jackc/pgx/v5"
)

//go:embed schema.sql
var schemaSQL string

//go:embed data.sql
var dataSQL string

// Size sets the row counts.
type Size struct {
	Customers, Products, Orders, ItemsPerOrder, Sessions, Contracts, Events int
}

// Default is the demo's size: about 307,000 rows in all.
var Default = Size{Customers: 20000, Products: 2000, Orders: 60000, ItemsPerOrder: 3, Sessions: 5000, Contracts: 50, Events: 50000}

// Small is for quick tests: a few thousand rows.
var Small = Size{Customers: 500, Products: 100, Orders: 1500, ItemsPerOrder: 3, Sessions: 100, Contracts: 5, Events: 1000}

// Scaled multiplies the default row counts (the benchmarks' scale factor).
func Scaled(factor float64) Size {
	s := func(n int) int { return max(1, int(float64(n)*factor)) }
	d := Default
	return Size{s(d.Customers), s(d.Products), s(d.Orders), d.ItemsPerOrder, s(d.Sessions), s(d.Contracts), s(d.Events)}
}

// Seed creates the schema and the data in an empty database.
func Seed(ctx context.Context, url string, size Size) error {
	var data bytes.Buffer
	if err := template.Must(template.New("data").Parse(dataSQL)).Execute(&data, size); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close(ctx)
	for _, part := range []struct{ name, sql string }{{"schema", schemaSQL}, {"data", data.String()}} {
		// The simple protocol runs a whole script in one round trip.
		if _, err := conn.Exec(ctx, part.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("seed %s: %w", part.name, err)
		}
	}
	return nil
}
