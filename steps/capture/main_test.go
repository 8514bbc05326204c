package capture

import (
	"os"
	"testing"

	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/testbin"
)

// Source and Target are this package's two throwaway servers, started once;
// each test takes fresh databases on them with FreshDB.
var Source, Target *pgtest.Server

func TestMain(m *testing.M) {
	code := pgtest.Main(m, &Source, &Target)
	testbin.Cleanup()
	os.Exit(code)
}
