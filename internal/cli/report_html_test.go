package cli_test

import (
	"context"
	"encoding/json"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/internal/steptest"
)

// htmlPlan copies a table, calls a hook that fails its first attempt and
// is retried, compares, then opens a downtime window whose last step fails
// when var.fail is true, and the run rolls back.
const htmlPlan = `
plan "htmlreport" {
  description = "Copy, retry, compare, cut over"
  on_failure  = "rollback"
  downtime {
    from = step.freeze
    to   = step.switch
  }
}
variable "source_url" {
  type      = string
  sensitive = true
}
variable "target_url" {
  type      = string
  sensitive = true
}
variable "token" {
  type      = string
  sensitive = true
  default   = "tok-<b>&'+Xq9-never-reported"
}
variable "fail" { default = false }
database "old" { url = var.source_url }
database "new" { url = var.target_url }
step "copy" {
  uses   = "copy"
  source = database.old
  target = database.new
  jobs   = 1
}
step "hook" {
  uses  = "exec"
  shell = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; sleep 0.3; [ $((n % 2)) = 1 ]"
  retry {
    attempts = 2
    backoff  = "200ms"
  }
}
check "same" {
  uses       = "compare"
  source     = database.old
  target     = database.new
  depends_on = [step.copy]
  assert {
    that    = "output.equal"
    message = "the copy differs"
  }
}
step "freeze" {
  uses       = "exec"
  shell      = "sleep 0.3; echo frozen"
  depends_on = [check.same, step.hook]
  rollback {
    uses  = "exec"
    shell = "sleep 0.2; echo thawed"
  }
}
step "switch" {
  uses       = "exec"
  shell      = var.fail ? "sleep 0.3; echo \"no switch for ${var.token}\" >&2; exit 3" : "sleep 0.3"
  depends_on = [step.freeze]
}
`

// recordedRuns applies htmlPlan twice with the file store, a rehearsal
// that succeeds and a run that fails and rolls back: the plan's file
// and the variables that report it.
func recordedRuns(t *testing.T) (string, []string) {
	t.Helper()
	src, dst := Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustSQL(t, src, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 2000) i`)
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planFile, []byte(htmlPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := []string{"-var", "source_url=" + src, "-var", "target_url=" + dst}
	if code, out, errOut := runCLI(t, append([]string{"apply", "--auto-approve", planFile}, vars...)...); code != 0 {
		t.Fatalf("the rehearsal: exit %d\n%s%s", code, out, errOut)
	}
	steptest.MustSQL(t, dst, "DROP TABLE items")
	code, out, errOut := runCLI(t, append([]string{"apply", "--auto-approve", "--restart", planFile, "-var", "fail=true"}, vars...)...)
	if code != 1 || !strings.Contains(out, "step.switch: failed") {
		t.Fatalf("the failing run: exit %d\n%s%s", code, out, errOut)
	}
	return planFile, vars
}

// TestReportHTML reports a recorded run as HTML: its timeline (the retried
// attempt, the failure, the rollback, the window), the rehearsal's
// durations beside it, two runs one above the other, no secret; then
// renders it in headless Chromium.
func TestReportHTML(t *testing.T) {
	planFile, vars := recordedRuns(t)
	dir := filepath.Dir(planFile)
	var doc struct {
		Run struct {
			ID string `json:"id"`
		} `json:"run"`
		Steps []struct {
			Addr string `json:"addr"`
		} `json:"steps"`
		Rollbacks []json.RawMessage `json:"rollbacks"`
	}
	code, js, errOut := runCLI(t, append([]string{"report", "--format", "json", planFile}, vars...)...)
	if code != 0 || json.Unmarshal([]byte(js), &doc) != nil {
		t.Fatalf("report --format json: exit %d\n%s%s", code, js, errOut)
	}
	htmlFile := filepath.Join(dir, "report.html")
	code, stdout, errOut := runCLI(t, append([]string{"report", "--format", "html", "-o", htmlFile, planFile}, vars...)...)
	if code != 0 || stdout != "" {
		t.Fatalf("report --format html: exit %d\n%s%s", code, stdout, errOut)
	}
	raw, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	for _, form := range []string{"tok-<b>&'+Xq9", report.HTMLEscape("tok-<b>&'+Xq9"), "Xq9-never", Source.Password, Target.Password} {
		if strings.Contains(page, form) {
			t.Errorf("the HTML report shows a secret (%q)", form)
		}
	}
	rehearsal := regexp.MustCompile(`durations beside this run&#39;s are from run ([0-9A-Za-z.-]+); the window it predicts: [0-9.]+(ms|s)`).FindStringSubmatch(page)
	if rehearsal == nil || rehearsal[1] == doc.Run.ID {
		t.Fatalf("the report does not name the rehearsal (the previous successful run):\n%s", page)
	}
	for what, re := range map[string]string{
		"the retried attempt":                `<rect class="bar st-retried" x=`,
		"the failed step":                    `<g class="row-step"><text class="label" x="8" y="[0-9]+">step.switch</text><rect class="bar st-failed"`,
		"the rollback":                       `<g class="row-rollback"><text class="label" x="8" y="[0-9]+">rollback of step.freeze</text><rect class="bar st-rolled-back"`,
		"the window, closed by the rollback": `<rect class="window" x="[0-9.]+" y="30" width="[0-9.]+" height="[0-9]+"><title>downtime window</title>`,
		"the window's length":                `<td class="big">[0-9.]+(ms|s), from the start of step.freeze to the end of the rollback of step.freeze \(`,
		"the rehearsal's durations":          `<td class="num previous">[0-9.]+(ms|s) \([-&#0-9;]+%\)</td>`,
		"the copy's rows":                    `<tr><th>rows</th><td>2000</td></tr>`,
		"the failed step's error, redacted":  `no switch for \(sensitive\)`,
		"the check's passed assertion":       `<li class="assert pass"><span class="verdict">passed</span> <code>output.equal</code>`,
	} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("the HTML report lacks %s (%s)", what, re)
		}
	}

	// Two runs, one above the other; the other formats refuse two.
	code, two, errOut := runCLI(t, append([]string{"report", "--format", "html", "--run", rehearsal[1], "--run", doc.Run.ID, planFile}, vars...)...)
	if code != 0 {
		t.Fatalf("report --run A --run B: exit %d\n%s", code, errOut)
	}
	i1, i2 := strings.Index(two, `id="r1-timeline"`), strings.Index(two, `id="r2-timeline"`)
	if i1 < 0 || i2 < i1 || !strings.Contains(two[i1:i2], rehearsal[1]) || !strings.Contains(two[i2:], doc.Run.ID) {
		t.Errorf("the two runs' timelines are not one above the other")
	}
	code, _, errOut = runCLI(t, append([]string{"report", "--run", rehearsal[1], "--run", doc.Run.ID, planFile}, vars...)...)
	if code != 2 || !strings.Contains(errOut, "are shown together only by --format html") {
		t.Errorf("report --run twice as Markdown: exit %d\n%s", code, errOut)
	}

	t.Run("chromium", func(t *testing.T) {
		rows := len(doc.Steps) + len(doc.Rollbacks)
		switchRow := -1
		for i, s := range doc.Steps {
			if s.Addr == "step.switch" {
				switchRow = i
			}
		}
		screenshotChecks(t, htmlFile, rows, switchRow)
	})
}

// The colours the page's CSS gives a succeeded bar and a failed one.
var (
	succeededFill = color.RGBA{0x2f, 0x85, 0x5a, 0xff}
	failedFill    = color.RGBA{0xc5, 0x30, 0x30, 0xff}
)

// screenshotChecks renders the page in headless Chromium and checks that
// the screenshot is not blank and that the timeline's bars are where its
// layout puts them: from the plot's left edge (the copy starts at the
// run's start), one row apart, the failed step in its row, the legend
// under the rows.
func screenshotChecks(t *testing.T, page string, rows, failedRow int) {
	const browser = "/usr/bin/chromium"
	if _, err := os.Stat(browser); err != nil {
		t.Fatalf("%s: %v: install Debian's chromium (apt-get install -y chromium)", browser, err)
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--user-data-dir="+profile, "--window-size=1280,2400",
		"--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 {
		t.Fatalf("the screenshot is %dx%d, not 1280 wide", b.Dx(), b.Dy())
	}
	inked := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				inked++
			}
		}
	}
	if inked < b.Dx()*b.Dy()/50 {
		t.Fatalf("the screenshot is blank: %d of %d pixels not white", inked, b.Dx()*b.Dy())
	}

	// The plot starts after the page's margin and the names' column.
	plotLeft := report.PageMargin + report.TimelineLab
	plotRight := plotLeft + report.TimelinePlotW
	bands := func(c color.RGBA) (minX, maxX int, tops []int) {
		minX = b.Max.X
		prev := -10
		for y := b.Min.Y; y < b.Max.Y; y++ {
			hit := false
			for x := plotLeft - 10; x < plotRight+10; x++ {
				if color.RGBAModel.Convert(img.At(x, y)) == c {
					hit = true
					minX, maxX = min(minX, x), max(maxX, x)
				}
			}
			if hit && y != prev+1 {
				tops = append(tops, y)
			}
			if hit {
				prev = y
			}
		}
		return minX, maxX, tops
	}
	minX, maxX, green := bands(succeededFill)
	if len(green) < 3 {
		t.Fatalf("the screenshot has %d bands of the succeeded colour in the plot, want the timeline's bars", len(green))
	}
	if minX < plotLeft-1 || minX > plotLeft+4 || maxX > plotRight+1 {
		t.Errorf("the succeeded bars span x %d..%d; the plot is %d..%d and the copy starts at its left edge", minX, maxX, plotLeft, plotRight)
	}
	first := green[0] // step.copy's bar, the first row
	near := func(y, want int) bool { return y >= want-2 && y <= want+2 }
	for _, top := range green {
		off := top - first
		legend := near(off, rows*24+7) // the legend's swatch, under the rows
		if !legend && !near(off%24, 0) && !near(off%24, 24) {
			t.Errorf("a succeeded bar at y %d is %dpx below the first, not a whole number of 24px rows", top, off)
		}
	}
	if !near(green[len(green)-1]-first, rows*24+7) {
		t.Errorf("the legend's swatch is at y %d, want %d (under %d rows)", green[len(green)-1], first+rows*24+7, rows)
	}
	_, _, red := bands(failedFill)
	found := false
	for _, top := range red {
		found = found || near(top, first+failedRow*24)
	}
	if !found {
		t.Errorf("no failed bar in row %d (y %d); bands of the failed colour at %v (the first bar at %d)", failedRow, first+failedRow*24, red, first)
	}
	t.Logf("screenshot: %d of %d pixels inked, the timeline's bars from y %d", inked, b.Dx()*b.Dy(), first)
}
