package reference

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// wrap breaks s into lines of at most width characters, each prefixed by indent.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	for _, para := range strings.Split(s, "\n") {
		line := indent
		for _, w := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(w) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// typeLabel is a field's type as explain prints it, such as "<[]Object>".
func typeLabel(f *Field) string { return "<" + f.Type + ">" }

// ExplainField writes the explanation of field (the kind's root when path
// is the kind alone): what kubectl explain prints, plus allowed values,
// default, example and constraints. recursive lists every descendant
// instead of the direct children only.
func (m *Model) ExplainField(w io.Writer, kind, field *Field, path string, recursive bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "KIND:       %s\nVERSION:    %s\n\n", kind.Name, m.APIVersion)
	if field != kind {
		name := path[strings.LastIndex(path, ".")+1:]
		fmt.Fprintf(&b, "FIELD:      %s %s", name, typeLabel(field))
		if field.Required {
			b.WriteString(" -required-")
		}
		fmt.Fprintf(&b, "\nPATH:       %s\n\n", path)
	}
	b.WriteString("DESCRIPTION:\n")
	b.WriteString(wrap(field.Description, "    ", 80))
	if field.Ref != "" {
		fmt.Fprintf(&b, "\nREFERENCES:\n    the metadata.name of a %s (edgectl explain %s)\n", field.Ref, field.Ref)
	}
	if len(field.Enum) > 0 {
		b.WriteString("\nALLOWED VALUES:\n")
		for _, v := range field.Enum {
			if v == field.Default {
				v += " (default)"
			}
			b.WriteString("    " + v + "\n")
		}
	}
	if field.Default != "" {
		fmt.Fprintf(&b, "\nDEFAULT:\n    %s\n", field.Default)
	}
	if len(field.Phases) > 0 {
		fmt.Fprintf(&b, "\nPHASES:\n    %s\n", strings.Join(field.Phases, ", "))
	}
	if len(field.Constraints) > 0 {
		b.WriteString("\nCONSTRAINTS:\n")
		for _, c := range field.Constraints {
			b.WriteString(wrap(c, "    ", 80))
		}
	}
	if field.Example != "" && field != kind {
		b.WriteString("\nEXAMPLE:\n")
		name := path[strings.LastIndex(path, ".")+1:]
		ex := field.Example
		if strings.HasPrefix(ex, "|") {
			b.WriteString("    " + name + ": " + strings.ReplaceAll(ex, "\n", "\n    ") + "\n")
		} else {
			b.WriteString("    " + name + ": " + ex + "\n")
		}
	}
	if field.SeeAlso != "" {
		b.WriteString("\nSEE ALSO:\n" + wrap(field.SeeAlso, "    ", 80))
	}
	if len(field.Fields) > 0 {
		b.WriteString("\nFIELDS:\n")
		if recursive {
			writeTree(&b, field.Fields, "  ")
		} else {
			for _, c := range field.Fields {
				fmt.Fprintf(&b, "  %s\t%s", c.Name, typeLabel(c))
				if c.Required {
					b.WriteString(" -required-")
				}
				if len(c.Phases) > 0 {
					fmt.Fprintf(&b, " (phase: %s)", strings.Join(c.Phases, ", "))
				}
				b.WriteString("\n")
				b.WriteString(wrap(c.Description, "    ", 80))
				b.WriteString("\n")
			}
		}
	}
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

func writeTree(b *strings.Builder, fs []*Field, indent string) {
	for _, c := range fs {
		fmt.Fprintf(b, "%s%s\t%s", indent, c.Name, typeLabel(c))
		if c.Required {
			b.WriteString(" -required-")
		}
		b.WriteString("\n")
		writeTree(b, c.Fields, indent+"  ")
	}
}

// Overview writes what explain prints without arguments.
func (m *Model) Overview(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "The edgectl manifest language (apiVersion %s).\n\nKINDS:\n", m.APIVersion)
	for _, k := range m.Kinds {
		fmt.Fprintf(&b, "  %s\n", k.Name)
		b.WriteString(wrap(k.Description, "    ", 80))
	}
	b.WriteString("\nUSAGE:\n")
	b.WriteString("  edgectl explain KIND[.field.path]   a kind or a field: type, description, allowed values, default, example\n")
	b.WriteString("  edgectl explain KIND --recursive     every field of a kind, as a tree\n")
	b.WriteString("  edgectl explain variables            the rules engines' variables, their formats and examples;\n")
	b.WriteString("                                       --engine firewall|application, --phase request|response\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// FilterVariables returns the variables of engine ("" for both) that exist
// in phase ("" for any), in the model's order.
func (m *Model) FilterVariables(engine, phase string) []Variable {
	var out []Variable
	for _, v := range m.Variables {
		if engine != "" && v.Engine != engine {
			continue
		}
		if phase != "" && !slices.Contains(v.Phases, phase) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// ExplainVariables writes the variables of engine ("" for both) in phase
// ("" for any) with their formats and examples.
func (m *Model) ExplainVariables(w io.Writer, engine, phase string) error {
	var b strings.Builder
	for _, eng := range []string{"firewall", "application"} {
		if engine != "" && engine != eng {
			continue
		}
		vs := m.FilterVariables(eng, phase)
		if len(vs) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		if eng == "firewall" {
			b.WriteString("FIREWALL VARIABLES (written bare in criteria: variable: host)\n\n")
		} else {
			b.WriteString("APPLICATION VARIABLES (written ${name} in criteria and behavior arguments)\n\n")
		}
		for _, v := range vs {
			name := v.Name
			if eng == "application" {
				name = "${" + name + "}"
			}
			fmt.Fprintf(&b, "  %s", name)
			if eng == "application" {
				fmt.Fprintf(&b, "  [%s]", strings.Join(v.Phases, ", "))
			}
			if v.Origin == "edgectl" {
				b.WriteString("  (beyond Azion)")
			}
			b.WriteString("\n")
			b.WriteString(wrap(v.Format, "    ", 80))
			b.WriteString("    example: " + v.Example + "\n\n")
		}
	}
	if b.Len() == 0 {
		return fmt.Errorf("no variables for engine %q in phase %q", engine, phase)
	}
	b.WriteString("OPERATORS\n\n")
	for _, o := range m.Operators {
		fmt.Fprintf(&b, "  %s (argument: %s)\n", o.Name, o.Argument)
		b.WriteString(wrap(o.Description, "    ", 80))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
