package rules

import (
	"sort"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// AppVariables lists the application variables of a phase, for messages
// and documentation: the fixed names, sorted, then the prefixed families
// written with a placeholder, such as arg_<name> and http_<header>. The
// response phase also has the response-only variables.
func AppVariables(phase string) []string {
	var out []string
	for n, k := range appVars {
		if (variable{kind: k}).responseOnly() && phase != manifest.PhaseResponse {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	for i := len(appPrefixes) - 1; i >= 0; i-- {
		p := appPrefixes[i]
		if (variable{kind: p.kind}).responseOnly() && phase != manifest.PhaseResponse {
			continue
		}
		placeholder := "<name>"
		if p.kind == vHTTP || p.kind == vSentHTTP || p.kind == vUpstreamHTTP {
			placeholder = "<header>"
		}
		out = append(out, p.prefix+placeholder)
	}
	return out
}

// FirewallVariables lists the firewall variables, sorted.
func FirewallVariables() []string {
	out := make([]string, 0, len(firewallVars))
	for n := range firewallVars {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
