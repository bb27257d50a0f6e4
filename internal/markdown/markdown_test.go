package markdown

import "testing"

func TestQuoting(t *testing.T) {
	tests := []struct {
		in, escape, span, fence string
	}{
		{"plain", "plain", "`plain`", "```"},
		{"a_b*c", `a\_b\*c`, "`a_b*c`", "```"},
		{"x`y", "x\\`y", "`` x`y ``", "```"},
		{"```go", "\\`\\`\\`go", "```` ```go ````", "````"},
		{"<b>[l](u)#!|~+{}\\", `\<b\>\[l\](u)\#\!\|\~\+\{\}\\`, "`<b>[l](u)#!|~+{}\\`", "```"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.escape {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.escape)
			}
			if got := CodeSpan(tt.in); got != tt.span {
				t.Errorf("CodeSpan(%q) = %q, want %q", tt.in, got, tt.span)
			}
			if got := CodeFence(tt.in); got != tt.fence {
				t.Errorf("CodeFence(%q) = %q, want %q", tt.in, got, tt.fence)
			}
		})
	}
}
