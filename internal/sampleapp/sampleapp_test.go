package sampleapp

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgtest"
)

var server *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &server)) }

func TestSeedCreatesEverythingMigrationsGetWrong(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := server.FreshDB(t)
	if err := Seed(ctx, url, Small); err != nil {
		t.Fatal(err)
	}
	conn, err := server.Connect(ctx, dbNameOf(url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	checks := map[string]string{
		"schemas":            `SELECT count(*) FROM pg_namespace WHERE nspname IN ('app', 'billing', 'audit')`,
		"identity columns":   `SELECT count(*) FROM information_schema.columns WHERE is_identity = 'YES'`,
		"partitions":         `SELECT count(*) FROM pg_inherits`,
		"unlogged tables":    `SELECT count(*) FROM pg_class WHERE relpersistence = 'u' AND relkind = 'r'`,
		"not valid":          `SELECT count(*) FROM pg_constraint WHERE NOT convalidated`,
		"large objects":      `SELECT count(*) FROM pg_largeobject_metadata`,
		"materialized views": `SELECT count(*) FROM pg_matviews WHERE ispopulated`,
		"partial indexes":    `SELECT count(*) FROM pg_index WHERE indpred IS NOT NULL`,
		"expression indexes": `SELECT count(*) FROM pg_index WHERE indexprs IS NOT NULL`,
		"enum":               `SELECT count(*) FROM pg_type WHERE typtype = 'e'`,
		"nulls":              `SELECT count(*) FROM app.customers WHERE country IS NULL`,
	}
	for name, q := range checks {
		var n int
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n == 0 {
			t.Errorf("%s: none", name)
		}
	}
	var rows int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.orders) + (SELECT count(*) FROM app.order_items)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := Small.Orders; rows < 2*want {
		t.Errorf("orders and items: %d rows", rows)
	}
}

func dbNameOf(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			name := url[i+1:]
			for j := range name {
				if name[j] == '?' {
					return name[:j]
				}
			}
			return name
		}
	}
	return url
}
