package validate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/rules"
)

// meanings maps a word people use for a fact of the request or of the
// client certificate to the variables that carry it, best first. A
// misspelt variable whose words name a meaning is suggested the first of
// these that exists for its engine and phase, before any spelling match:
// ${ssl_client_subject} means ${ssl_client_s_dn}, not ${arg_client_subject}.
var meanings = map[string][]string{
	"subject":      {"ssl_client_s_dn", "ssl_client_s_dn_parsed", "ssl_client_s_dn_rfc2253"},
	"dn":           {"ssl_client_s_dn", "ssl_client_s_dn_rfc2253"},
	"cn":           {"ssl_client_s_dn_parsed"},
	"commonname":   {"ssl_client_s_dn_parsed"},
	"common":       {"ssl_client_s_dn_parsed"},
	"issuer":       {"ssl_client_i_dn", "ssl_client_i_dn_rfc2253"},
	"fingerprint":  {"ssl_client_fingerprint", "ssl_client_fingerprint_sha256"},
	"sha1":         {"ssl_client_fingerprint"},
	"sha256":       {"ssl_client_fingerprint_sha256", "ssl_client_cert_thumbprint_s256"},
	"thumbprint":   {"ssl_client_cert_thumbprint_s256", "ssl_client_fingerprint_sha256"},
	"hash":         {"ssl_client_fingerprint_sha256", "ssl_client_fingerprint"},
	"cert":         {"ssl_client_escaped_cert"},
	"certificate":  {"ssl_client_escaped_cert"},
	"pem":          {"ssl_client_escaped_cert"},
	"verify":       {"ssl_client_verify", "client_certificate_validation", "ssl_verification_status"},
	"verified":     {"ssl_client_verify", "client_certificate_validation", "ssl_verification_status"},
	"verification": {"ssl_client_verify", "ssl_verification_status", "client_certificate_validation"},
	"validation":   {"ssl_client_verify", "client_certificate_validation", "ssl_verification_status"},
	"valid":        {"ssl_client_verify", "client_certificate_validation"},
	"serial":       {"ssl_client_serial"},
	"start":        {"ssl_client_v_start"},
	"before":       {"ssl_client_v_start"},
	"issued":       {"ssl_client_v_start"},
	"end":          {"ssl_client_v_end"},
	"after":        {"ssl_client_v_end"},
	"expiry":       {"ssl_client_v_end", "ssl_client_v_remain"},
	"expires":      {"ssl_client_v_end", "ssl_client_v_remain"},
	"expiration":   {"ssl_client_v_end", "ssl_client_v_remain"},
	"remain":       {"ssl_client_v_remain"},
	"remaining":    {"ssl_client_v_remain"},
	"days":         {"ssl_client_v_remain"},
	"san":          {"ssl_client_san_dns", "ssl_client_san_uri"},
	"dns":          {"ssl_client_san_dns"},
	"spiffe":       {"ssl_client_san_uri"},
	"xfcc":         {"ssl_client_xfcc"},
	"ip":           {"remote_addr", "network"},
	"addr":         {"remote_addr", "network"},
	"address":      {"remote_addr", "network"},
	"remote":       {"remote_addr", "network"},
	"path":         {"uri", "request_uri"},
	"url":          {"request_uri", "uri"},
	"method":       {"request_method"},
	"verb":         {"request_method"},
	"query":        {"args", "request_args"},
	"params":       {"args", "request_args"},
	"sni":          {"ssl_server_name", "host"},
	"servername":   {"ssl_server_name"},
	"tls":          {"ssl_protocol"},
	"version":      {"ssl_protocol"},
	"protocol":     {"ssl_protocol"},
	"cipher":       {"ssl_cipher"},
	"useragent":    {"http_user_agent", "header_user_agent"},
	"agent":        {"http_user_agent", "header_user_agent"},
	"referer":      {"http_referer", "header_referer"},
	"referrer":     {"http_referer", "header_referer"},
	"code":         {"status", "upstream_status"},
}

// noise are words that say where a variable comes from rather than what
// it holds; they do not pick a meaning.
var noise = map[string]bool{"ssl": true, "client": true, "request": true, "header": true, "http": true, "x": true, "the": true, "get": true, "var": true}

// byMeaning returns the variable among candidates that the words of name
// mean, or "". Each word of name (split at '_' and '-', lowercased; two
// neighbouring words also as one, so common_name is commonname) votes for
// the variables of its meaning; the candidate with the most votes wins,
// ties to the earlier in the meaning's list, then by name.
func byMeaning(name string, candidates []string) string {
	valid := make(map[string]bool, len(candidates))
	for _, c := range candidates {
		valid[c] = true
	}
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' || r == '-' })
	var keys []string
	for i, w := range words {
		if !noise[w] {
			keys = append(keys, w)
		}
		if i+1 < len(words) {
			keys = append(keys, w+words[i+1])
		}
	}
	type vote struct {
		n, rank int
	}
	votes := map[string]*vote{}
	for _, k := range keys {
		for rank, v := range meanings[k] {
			if !valid[v] {
				continue
			}
			if votes[v] == nil {
				votes[v] = &vote{rank: rank}
			}
			votes[v].n++
			votes[v].rank = min(votes[v].rank, rank)
		}
	}
	names := make([]string, 0, len(votes))
	for v := range votes {
		names = append(names, v)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := votes[names[i]], votes[names[j]]
		if a.n != b.n {
			return a.n > b.n
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		return names[i] < names[j]
	})
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// unknownVariable matches the rules engine's message for an unknown
// variable: the engine, the name, and its own suggestion if any.
var unknownVariable = regexp.MustCompile(`^unknown (firewall )?variable "(\$\{)?([A-Za-z0-9_]+)(\})?"(; did you mean "[^"]*"\?)?$`)

// teachVariable rewrites the message of an unknown variable found at path
// of doc: the suggestion goes by spelling for a typo, else by meaning
// (${ssl_client_subject} means ${ssl_client_s_dn}), and the message ends
// with the variables of that engine and phase. Other messages are returned
// unchanged.
func teachVariable(doc *manifest.Document, path, msg string) string {
	m := unknownVariable.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	firewall, name := m[1] != "", m[3]
	spelled := m[2] + name + m[4]
	if firewall {
		names := rules.FirewallVariables()
		out := fmt.Sprintf("unknown firewall variable %q", spelled)
		if best := suggestVariable(name, names); best != "" {
			out += fmt.Sprintf("; did you mean %q?", best)
		}
		return hint(out, "Firewall variables: ", names) + " (edgectl explain variables --engine firewall)"
	}
	phase := rulePhase(doc, path)
	listed := rules.AppVariables(phase)
	var candidates []string
	for _, n := range listed {
		prefix, family := strings.CutSuffix(n, "<name>")
		if !family {
			prefix, family = strings.CutSuffix(n, "<header>")
		}
		if !family {
			candidates = append(candidates, n)
			continue
		}
		// The family with the misspelt name's suffix: htp_user_agent
		// means http_user_agent.
		if _, rest, ok := strings.Cut(name, "_"); ok && rest != "" {
			candidates = append(candidates, prefix+rest)
			if _, rest2, ok := strings.Cut(rest, "_"); ok && rest2 != "" {
				candidates = append(candidates, prefix+rest2)
			}
		}
	}
	out := fmt.Sprintf("unknown variable \"${%s}\"", name)
	if best := suggestVariable(name, candidates); best != "" {
		out += fmt.Sprintf("; did you mean \"${%s}\"?", best)
	}
	return hint(out, strings.ToUpper(phase[:1])+phase[1:]+"-phase variables: ", listed) +
		" (edgectl explain variables --engine application --phase " + phase + ")"
}

// hint ends msg with the list of valid names, as a sentence of its own.
func hint(msg, title string, names []string) string {
	if !strings.HasSuffix(msg, "?") {
		msg += "."
	}
	return msg + " " + title + strings.Join(names, ", ")
}

// suggestVariable picks the candidate name most likely meant: a close
// spelling (a typo of one or two characters) first, then by meaning, then
// the closest spelling.
func suggestVariable(name string, candidates []string) string {
	best := diag.Closest(name, candidates)
	if best != "" && diag.Distance(name, best) <= 2 {
		return best
	}
	if m := byMeaning(name, candidates); m != "" {
		return m
	}
	return best
}

// rulePhase is the phase of the application rule that path lies in
// (spec.rules[N]...), request outside a rule or when not set.
func rulePhase(doc *manifest.Document, path string) string {
	if rest, ok := strings.CutPrefix(path, "spec.rules["); ok {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			if v, ok := lookup(doc.Value(), "spec.rules["+rest[:i]+"].phase"); ok && v == manifest.PhaseResponse {
				return manifest.PhaseResponse
			}
		}
	}
	return manifest.PhaseRequest
}
