package cli_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/planrun/planrun/internal/cli"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/testbin"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script/*.txtar")

// Source and Target are the package's two throwaway servers; each script
// gets fresh databases on them as $SOURCE_URL and $TARGET_URL.
var Source, Target *pgtest.Server

type withServers struct{ m *testing.M }

func (w withServers) Run() int {
	defer testbin.Cleanup()
	return pgtest.Main(w.m, &Source, &Target)
}

func TestMain(m *testing.M) {
	testscript.Main(withServers{m}, map[string]func(){
		"planrun": func() {
			os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			tb := scriptTB{env: env, name: filepath.Base(env.WorkDir)}
			env.Setenv("SOURCE_URL", Source.FreshDB(tb))
			env.Setenv("SOURCE_PASSWORD", Source.Password)
			target := Target.FreshDB(tb)
			env.Setenv("TARGET_URL", target)
			env.Setenv("TARGET_PASSWORD", Target.Password)
			env.Setenv("TARGET_BAD_URL", strings.Replace(target, ":"+Target.Password+"@", ":Wr0ng-pw-Zz@", 1))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sql": sqlCmd,
		},
	})
}

// scriptTB adapts a testscript environment for pgtest.FreshDB.
type scriptTB struct {
	env  *testscript.Env
	name string
}

func (s scriptTB) Helper()                        {}
func (s scriptTB) Name() string                   { return s.name }
func (s scriptTB) Cleanup(f func())               { s.env.Defer(f) }
func (s scriptTB) Fatalf(format string, a ...any) { s.env.T().Fatal(fmt.Sprintf(format, a...)) }

// sqlCmd runs SQL against a script's database and prints the rows, one
// line each, values separated by |:  sql source 'SELECT count(*) FROM t'
func sqlCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || (args[0] != "source" && args[0] != "target") {
		ts.Fatalf("usage: sql source|target QUERY")
	}
	url := ts.Getenv(strings.ToUpper(args[0]) + "_URL")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		ts.Fatalf("sql: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, args[1], pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("sql: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			ts.Fatalf("sql: %v", err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(ts.Stdout(), strings.Join(parts, "|"))
	}
	err = rows.Err()
	if neg && err == nil {
		ts.Fatalf("sql: unexpected success")
	}
	if !neg && err != nil {
		ts.Fatalf("sql: %v", err)
	}
}
