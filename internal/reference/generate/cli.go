package generate

import (
	"bytes"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/edgectl/edgectl/pkg/cli"
)

var cliGenerated = generatedFrom("the commands of pkg/cli")

// manDate is the date in the man pages' footer. It is fixed so that the
// pages depend only on the commands; change it when the CLI changes much.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// cliFiles renders the CLI reference from the cobra commands: a Markdown
// page per command in docs/cli/ (with an index, README.md) and a man page
// per command in docs/cli/man/.
func cliFiles(out map[string][]byte) error {
	root := cli.NewRootCmd(&cli.IO{})
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	var cmds []*cobra.Command
	var collect func(c *cobra.Command)
	collect = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root || c.IsAdditionalHelpTopicCommand() {
			return
		}
		c.DisableAutoGenTag = true
		cmds = append(cmds, c)
		for _, s := range c.Commands() {
			collect(s)
		}
	}
	collect(root)
	var index bytes.Buffer
	index.WriteString(cliGenerated + "# Command-line reference\n\n")
	index.WriteString("One page per command, generated from the commands themselves (`edgectl help COMMAND` prints\n")
	index.WriteString("the same). Man pages are in [man/](man/): `man ./docs/cli/man/edgectl-validate.1`.\n\n")
	for _, c := range cmds {
		base := strings.ReplaceAll(c.CommandPath(), " ", "_")
		var md bytes.Buffer
		md.WriteString(cliGenerated)
		if err := doc.GenMarkdownCustom(c, &md, func(s string) string { return s }); err != nil {
			return err
		}
		out["docs/cli/"+base+".md"] = md.Bytes()
		depth := strings.Count(c.CommandPath(), " ")
		indexLine := strings.Repeat("  ", depth) + "- [" + c.CommandPath() + "](" + base + ".md): " + c.Short + "\n"
		index.WriteString(indexLine)

		var man bytes.Buffer
		header := &doc.GenManHeader{Title: strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-")), Section: "1",
			Date: &manDate, Source: "edgectl", Manual: "edgectl manual"}
		if err := doc.GenMan(c, header, &man); err != nil {
			return err
		}
		out["docs/cli/man/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = man.Bytes()
	}
	out["docs/cli/README.md"] = index.Bytes()
	return nil
}
