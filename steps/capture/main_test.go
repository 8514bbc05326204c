package capture

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/testbin"
	"github.com/planrun/planrun/steps/steptype"
)

// Source and Target are this package's two throwaway servers, started once;
// each test takes fresh databases on them with FreshDB.
var Source, Target *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childCatchUp())
	}
	code := pgtest.Main(m, &Source, &Target)
	testbin.Cleanup()
	os.Exit(code)
}

// childEnv makes the test binary a catch_up of the databases in
// $PLANRUN_CAPTURE_SRC and $PLANRUN_CAPTURE_DST that a test kills
// (TestCaptureKilledDuringApply): slow batches, nothing else.
const childEnv = "PLANRUN_CAPTURE_CHILD"

func childCatchUp() int {
	env := &steptype.Env{Secrets: func(...string) {}}
	testHooks.Store(env, func(int) { time.Sleep(20 * time.Millisecond) }) // inside each batch's transaction
	batch := 50
	_, err := runCapture(context.Background(), env, &CaptureArgs{Action: "catch_up", BatchRows: &batch,
		Source: &pgkit.Database{Name: "source", URL: os.Getenv("PLANRUN_CAPTURE_SRC")},
		Target: &pgkit.Database{Name: "target", URL: os.Getenv("PLANRUN_CAPTURE_DST")}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
