package steps

import (
	"os"
	"testing"

	"github.com/planrun/planrun/internal/pgtest"
)

// source and target are this package's two throwaway servers, started once;
// each test takes fresh databases on them with FreshDB.
var source, target *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &source, &target)) }
