package markdown

import "strings"

// Escape backslash-escapes the characters that Markdown would interpret in
// s, such as a resource name with underscores or backticks.
func Escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]<>#+!|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CodeSpan wraps s in an inline code span whose backtick run is longer
// than any in s (padded with a space on each side when s holds backticks,
// as CommonMark strips one).
func CodeSpan(s string) string {
	n := longestBacktickRun(s)
	fence := strings.Repeat("`", n+1)
	if n > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// CodeFence returns a fence for a code block holding s: at least three
// backticks, and more than any backtick run in s.
func CodeFence(s string) string {
	return strings.Repeat("`", max(3, longestBacktickRun(s)+1))
}

func longestBacktickRun(s string) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}
