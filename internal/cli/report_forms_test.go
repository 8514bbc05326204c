package cli

import (
	"net/url"
	"testing"

	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/report"
)

// TestHTMLForms: a secret with HTML's special characters is redacted as
// the page writes it, as it is and in its other forms.
func TestHTMLForms(t *testing.T) {
	secret := `p<w>&'"+d`
	page := report.HTMLEscape("password " + secret + " and " + url.QueryEscape(secret))
	red := redact.New(append([]string{secret}, htmlForms([]string{secret})...)...)
	if got := red.String(page); got != "password (sensitive) and (sensitive)" {
		t.Errorf("redacted: %s", got)
	}
}
