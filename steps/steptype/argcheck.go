package steptype

import (
	"fmt"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/bytesize"
)

// The checks of string arguments that have a syntax of their own. A type
// lists them in Def.ArgChecks; validate runs them on every value it knows
// (plan.ArgChecker), and the run calls the same functions, so a plan that
// validates does not fail half-way on a typo.

// CheckArg implements plan.ArgChecker.
func (d Def[A, O]) CheckArg(name, value string) error {
	if check := d.ArgChecks[name]; check != nil {
		return check(value)
	}
	return nil
}

// CheckArgSet implements plan.ArgSetChecker.
func (d Def[A, O]) CheckArgSet(given map[string]bool) (string, error) {
	if d.ArgSet == nil {
		return "", nil
	}
	return d.ArgSet(given)
}

// ParseDuration reads a duration such as "30s", "5m" or "1h30m"; positive
// unless zero is allowed.
func ParseDuration(s string, zeroOK bool) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (d == 0 && !zeroOK) {
		return 0, fmt.Errorf("%q is not a duration such as \"30s\", \"5m\" or \"1h30m\"", s)
	}
	return d, nil
}

// CheckDuration accepts a positive duration, or "" for the default.
func CheckDuration(s string) error {
	if s == "" {
		return nil
	}
	_, err := ParseDuration(s, false)
	return err
}

// CheckSize accepts a size of at least min bytes, or "" for the default.
func CheckSize(min int64, minText string) func(string) error {
	return func(s string) error {
		if s == "" {
			return nil
		}
		n, err := bytesize.Parse(s)
		if err == nil && n < min {
			err = fmt.Errorf("%q is less than %s", s, minText)
		}
		return err
	}
}

// CheckOneOf accepts one of the values ("" only when listed).
func CheckOneOf(values ...string) func(string) error {
	return func(s string) error {
		for _, v := range values {
			if s == v {
				return nil
			}
		}
		var quoted []string
		for _, v := range values {
			if v != "" {
				quoted = append(quoted, fmt.Sprintf("%q", v))
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(quoted, ", "))
	}
}
