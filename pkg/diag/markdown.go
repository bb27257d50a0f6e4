package diag

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownOptions tune WriteMarkdown.
type MarkdownOptions struct {
	// Title is the heading, such as "edgectl plan".
	Title string
	// Outcome is the sentence after the counts, such as "Nothing was planned."
	Outcome string
	// MaxLength bounds the output in bytes (default 65,536, GitHub's limit
	// on a pull-request comment); diagnostics that do not fit are counted
	// in a closing note.
	MaxLength int
}

// WriteMarkdown renders the diagnostics for a pull-request comment: a
// heading, the counts of errors and warnings, and one list item per
// diagnostic with its file:line:col and field path, errors first.
func (l List) WriteMarkdown(w io.Writer, opts MarkdownOptions) error {
	if opts.MaxLength <= 0 {
		opts.MaxLength = 65536
	}
	var b strings.Builder
	if opts.Title != "" {
		fmt.Fprintf(&b, "### %s\n\n", opts.Title)
	}
	errs, warns := l.Count(Error), l.Count(Warning)
	icon, what := "❌", "The manifests are invalid"
	if errs == 0 {
		icon, what = "⚠️", "The manifests have warnings"
	}
	fmt.Fprintf(&b, "%s **%s: %s, %s.**", icon, what, plural(errs, "error"), plural(warns, "warning"))
	if opts.Outcome != "" {
		b.WriteString(" " + opts.Outcome)
	}
	b.WriteString("\n\n")
	const noteRoom = 200
	shown := 0
	for _, sev := range []Severity{Error, Warning} {
		for _, d := range l {
			if d.Severity != sev {
				continue
			}
			item := markdownItem(d)
			if b.Len()+len(item)+noteRoom > opts.MaxLength {
				fmt.Fprintf(&b, "\n_%s not shown: this comment is limited to %d characters. Run `edgectl validate` for every one._\n",
					plural(len(l)-shown, "more diagnostic"), opts.MaxLength)
				_, err := io.WriteString(w, b.String())
				return err
			}
			b.WriteString(item)
			shown++
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func markdownItem(d Diagnostic) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- **%s**", d.Severity)
	if d.File != "" {
		b.WriteString(" " + codeSpan(d.Pos.String()))
	}
	if d.Path != "" {
		b.WriteString(" " + codeSpan(d.Path))
	}
	b.WriteString(": " + escapeMarkdown(strings.ReplaceAll(d.Message, "\n", " ")) + "\n")
	return b.String()
}

// codeSpan wraps s in a code span whose backtick run is longer than any in s.
func codeSpan(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// escapeMarkdown escapes the characters Markdown would interpret in s.
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]<>#+!|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
