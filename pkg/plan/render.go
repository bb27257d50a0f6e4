package plan

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Masked is what every renderer shows instead of a sensitive value.
const Masked = "(sensitive)"

// symbol is the one-character sign of an action or of a field change.
func symbol(a Action) string {
	switch a {
	case Create:
		return "+"
	case Delete:
		return "-"
	}
	return "~"
}

func fieldSymbol(f *Field) string {
	switch {
	case f.Before == nil:
		return "+"
	case f.After == nil:
		return "-"
	}
	return "~"
}

// display renders one value for people: strings quoted, PEM summaries and
// masked values as they are, objects and lists as one line of JSON.
func display(v any, sensitive bool) string {
	if sensitive {
		return Masked
	}
	if s, ok := v.(string); ok && pemSummaryRE.MatchString(s) {
		return s
	}
	return compact(v)
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "… (truncated)"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// SummaryLine is "Plan: 1 to create, 2 to update, 0 to delete." or the
// no-change sentence.
func (p *Plan) SummaryLine() string {
	if !p.HasChanges() {
		return "No changes: the deployed state matches the manifests."
	}
	return fmt.Sprintf("Plan: %d to create, %d to update, %d to delete.", p.Summary.Create, p.Summary.Update, p.Summary.Delete)
}

// TextOptions tune the text renderer.
type TextOptions struct {
	// Color adds ANSI colors (for a terminal).
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

func (o TextOptions) paint(sym, s string) string {
	if !o.Color {
		return s
	}
	color := ansiYellow
	switch sym {
	case "+":
		color = ansiGreen
	case "-":
		color = ansiRed
	}
	return color + s + ansiReset
}

// WriteText renders the plan for a terminal or a log: one line per changed
// resource ("+ Domain/api", "~", "-"), the changed fields indented under it,
// and a summary line.
func WriteText(w io.Writer, p *Plan, opts TextOptions) error {
	var b bytes.Buffer
	warning := ""
	if msg := p.DestroyMessage(); msg != "" {
		warning = "WARNING: " + msg + ".\nedgectl apply refuses this plan unless --allow-destroy is given.\n"
		if opts.Color {
			warning = ansiBold + ansiRed + strings.TrimSuffix(warning, "\n") + ansiReset + "\n"
		}
		b.WriteString(warning + "\n")
	}
	if !p.HasChanges() {
		b.WriteString(p.SummaryLine() + "\n")
		_, err := w.Write(b.Bytes())
		return err
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		sym := symbol(c.Action)
		head := sym + " " + c.ID()
		if opts.Color {
			head = ansiBold + opts.paint(sym, head)
		}
		b.WriteString(head + "\n")
		for j := range c.Fields {
			f := &c.Fields[j]
			fs := fieldSymbol(f)
			var val string
			switch fs {
			case "+":
				val = display(f.After, f.Sensitive)
			case "-":
				val = display(f.Before, f.Sensitive)
			default:
				val = display(f.Before, f.Sensitive) + " → " + display(f.After, f.Sensitive)
			}
			fmt.Fprintf(&b, "    %s %s: %s\n", opts.paint(fs, fs), f.Path, val)
		}
	}
	b.WriteString("\n" + p.SummaryLine() + "\n")
	if warning != "" {
		// Repeated last, where a long plan's reader looks.
		b.WriteString("\n" + warning)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func mask(v any, sensitive bool) any {
	if sensitive && v != nil {
		return Masked
	}
	return v
}

// object builds an ordered object from key/value pairs, leaving out nil values.
func object(kv ...any) *Object {
	o := &Object{Values: map[string]any{}}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			continue
		}
		k := kv[i].(string)
		o.Keys = append(o.Keys, k)
		o.Values[k] = kv[i+1]
	}
	return o
}

// WriteJSON renders the plan as stable, indented JSON for programs:
// formatVersion, lineage, priorSerial, warnings and destroysDomains (only
// when the plan deletes every Domain), changes (action, kind, name, fields
// with path, before, after, sensitive) and summary. Sensitive values are
// replaced by "(sensitive)"; the desired resources are left out (a saved
// plan, from Plan.Marshal, has them).
func WriteJSON(w io.Writer, p *Plan) error {
	changes := []any{}
	for _, c := range p.Changes {
		var fields any
		if len(c.Fields) > 0 {
			fs := make([]any, 0, len(c.Fields))
			for _, f := range c.Fields {
				var sens any
				if f.Sensitive {
					sens = true
				}
				fs = append(fs, object("path", f.Path, "before", mask(f.Before, f.Sensitive), "after", mask(f.After, f.Sensitive), "sensitive", sens))
			}
			fields = fs
		}
		changes = append(changes, object("action", string(c.Action), "kind", c.Kind, "name", c.Name, "fields", fields))
	}
	s := p.Summary
	var destroys, warnings any
	if msg := p.DestroyMessage(); msg != "" {
		names := make([]any, len(p.DestroysDomains))
		for i, n := range p.DestroysDomains {
			names[i] = n
		}
		destroys = names
		warnings = []any{object("code", "destroysAllDomains", "message", msg+"; edgectl apply refuses it unless --allow-destroy is given")}
	}
	v := object(
		"formatVersion", jsonNumber(p.FormatVersion),
		"lineage", p.Lineage,
		"priorSerial", jsonNumber(p.PriorSerial),
		"warnings", warnings,
		"destroysDomains", destroys,
		"changes", changes,
		"summary", object("create", jsonNumber(s.Create), "update", jsonNumber(s.Update), "delete", jsonNumber(s.Delete)),
	)
	var b bytes.Buffer
	if err := writeJSON(&b, v, "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

type jsonNumber int64

// MarkdownOptions tune the Markdown renderer.
type MarkdownOptions struct {
	// MaxLength bounds the output in bytes (default MaxCommentLength).
	MaxLength int
	// MaxValueLength bounds each shown value in characters (default 300).
	MaxValueLength int
}

// MaxCommentLength is GitHub's limit on a pull-request comment (65,536
// characters); the Markdown renderer stays under it.
const MaxCommentLength = 65536

// WriteMarkdown renders the plan for a pull-request comment: a summary
// table, a warning line when something is deleted, and each changed
// resource's fields in a collapsible block. When the whole plan does not
// fit in opts.MaxLength bytes, the resources that do not fit are left out
// and a note says how many.
func WriteMarkdown(w io.Writer, p *Plan, opts MarkdownOptions) error {
	if opts.MaxLength <= 0 {
		opts.MaxLength = MaxCommentLength
	}
	if opts.MaxValueLength <= 0 {
		opts.MaxValueLength = 300
	}
	var b strings.Builder
	b.WriteString("### edgectl plan\n\n")
	if p.Lineage == "" {
		b.WriteString("Compared with an empty state (first apply).\n\n")
	} else {
		fmt.Fprintf(&b, "Compared with the deployed state at serial %d (lineage `%s`).\n\n", p.PriorSerial, p.Lineage)
	}
	if msg := p.DestroyMessage(); msg != "" {
		fmt.Fprintf(&b, "> [!CAUTION]\n> 🛑 **Destroy:** %s.\n> `edgectl apply` refuses this plan unless `--allow-destroy` is given.\n\n", escapeMarkdown(msg))
	}
	if !p.HasChanges() {
		b.WriteString("✅ **No changes.** The deployed state matches the manifests.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("| Action | Resources |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| ➕ Create | %d |\n| ✏️ Update | %d |\n| ➖ Delete | %d |\n\n", p.Summary.Create, p.Summary.Update, p.Summary.Delete)
	if p.Summary.Delete > 0 {
		var names []string
		for i := range p.Changes {
			if c := &p.Changes[i]; c.Action == Delete {
				names = append(names, "`"+c.ID()+"`")
			}
		}
		const shown = 20
		list := strings.Join(names[:min(len(names), shown)], ", ")
		if len(names) > shown {
			list += fmt.Sprintf(" and %d more", len(names)-shown)
		}
		fmt.Fprintf(&b, "> ⚠️ **This plan deletes %s:** %s\n\n", plural(len(names), "resource"), list)
	}
	// Each change is one block; blocks are added while they fit, leaving
	// room for the closing note.
	const noteRoom = 400
	for i := range p.Changes {
		block := markdownChange(&p.Changes[i], opts.MaxValueLength)
		if b.Len()+len(block)+noteRoom > opts.MaxLength {
			left := len(p.Changes) - i
			fmt.Fprintf(&b, "\n_%s not shown: this comment is limited to %d characters. Run `edgectl plan` for the whole plan._\n",
				plural(left, "more change"), MaxCommentLength)
			break
		}
		b.WriteString(block)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func markdownChange(c *Change, maxValue int) string {
	var b strings.Builder
	icon := map[Action]string{Create: "➕", Update: "✏️", Delete: "➖"}[c.Action]
	if len(c.Fields) == 0 {
		fmt.Fprintf(&b, "%s %s `%s`\n\n", icon, c.Action, c.ID())
		return b.String()
	}
	var lines strings.Builder
	for j := range c.Fields {
		f := &c.Fields[j]
		val := func(v any) string { return truncate(display(v, f.Sensitive), maxValue) }
		switch fieldSymbol(f) {
		case "+":
			fmt.Fprintf(&lines, "+ %s: %s\n", f.Path, val(f.After))
		case "-":
			fmt.Fprintf(&lines, "- %s: %s\n", f.Path, val(f.Before))
		default:
			fmt.Fprintf(&lines, "- %s: %s\n+ %s: %s\n", f.Path, val(f.Before), f.Path, val(f.After))
		}
	}
	fence := codeFence(lines.String())
	fmt.Fprintf(&b, "<details><summary>%s %s <code>%s</code> (%s)</summary>\n\n%sdiff\n%s%s\n\n</details>\n\n",
		icon, c.Action, c.ID(), plural(len(c.Fields), "field"), fence, lines.String(), fence)
	return b.String()
}

// codeFence returns a backtick fence longer than any backtick run in s.
func codeFence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// escapeMarkdown escapes the characters that Markdown would interpret in
// s, such as a resource name with underscores or backticks.
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
