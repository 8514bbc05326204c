// Package bytesize reads sizes as people and PostgreSQL's settings write
// them ("256MB") and shows them for people ("1.5 GiB").
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a size such as "256MB", "1.5GB", "64kB" or "1048576".
// Units are powers of 1024, as in PostgreSQL's settings.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size such as \"256MB\" or \"1GB\"", s)
	}
	return int64(f * mult), nil
}

// Format shows a size in powers of 1024, one decimal: "512 B", "1.5 GiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
