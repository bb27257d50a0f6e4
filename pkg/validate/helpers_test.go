package validate_test

import (
	"fmt"
	"strings"
)

// fmtSscanf reads the line and column of a "file:line:col: ..." diagnostic.
func fmtSscanf(s string, line, col *int) (int, error) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 4 {
		return 0, fmt.Errorf("short")
	}
	return fmt.Sscanf(parts[1]+" "+parts[2], "%d %d", line, col)
}
