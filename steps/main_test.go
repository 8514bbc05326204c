package steps

import (
	"os"
	"testing"

	"github.com/planrun/planrun/internal/pgtest"
)

// Source and Target are this package's two throwaway servers, started once;
// each test takes fresh databases on them with FreshDB.
var Source, Target *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &Source, &Target)) }
