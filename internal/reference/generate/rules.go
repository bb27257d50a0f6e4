package generate

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/edgectl/edgectl/internal/reference"
)

// rulesMarkdown renders docs/reference/rules.md: criteria, operators, the
// variables of both engines, behaviors, Enforce and Permissive, TLS alerts
// and verify reasons, and the departures from Azion.
func rulesMarkdown(m *reference.Model) []byte {
	var b bytes.Buffer
	b.WriteString(generatedFrom("pkg/rules (variables, operators) and pkg/manifest (behaviors)"))
	b.WriteString(rulesIntro)

	b.WriteString("\n## Operators\n\n| operator | argument | true when |\n| --- | --- | --- |\n")
	for _, o := range m.Operators {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", o.Name, o.Argument, cell(o.Description))
	}

	b.WriteString(firewallVarsIntro)
	b.WriteString("| variable | value | example | from |\n| --- | --- | --- | --- |\n")
	for _, v := range m.Variables {
		if v.Engine == "firewall" {
			fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", v.Name, cell(v.Format), cell(v.Example), v.Origin)
		}
	}
	b.WriteString(appVarsIntro)
	b.WriteString("| variable | phases | value | example | from |\n| --- | --- | --- | --- | --- |\n")
	for _, v := range m.Variables {
		if v.Engine == "application" {
			fmt.Fprintf(&b, "| `${%s}` | %s | %s | `%s` | %s |\n", v.Name, strings.Join(v.Phases, ", "), cell(v.Format), cell(v.Example), v.Origin)
		}
	}
	b.WriteString(appVarsOutro)

	b.WriteString("\n## Behaviors\n\n")
	b.WriteString(behaviorsIntro)
	if _, f, _, err := m.Lookup("Application.spec.rules.behaviors"); err == nil {
		b.WriteString("\n### Application behaviors\n\n| behavior | argument | phases | what it does |\n| --- | --- | --- | --- |\n")
		for _, c := range f.Fields {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, argument(c), strings.Join(c.Phases, ", "), cell(c.Description))
		}
	}
	if _, f, _, err := m.Lookup("Firewall.spec.rules.behaviors"); err == nil {
		b.WriteString("\n### Firewall behaviors\n\n`deny`, `drop` and `setCustomResponse` end the firewall's rules; `setRateLimit` ends them only when it refuses\n" +
			"a request (429), so later rules still run under the limit.\n\n| behavior | argument | what it does |\n| --- | --- | --- |\n")
		for _, c := range f.Fields {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Name, argument(c), cell(c.Description))
		}
	}
	b.WriteString(headerRules)
	b.WriteString(mtlsSemantics)
	b.WriteString(departures)
	return b.Bytes()
}

// argument describes what a behavior takes.
func argument(f *reference.Field) string {
	switch {
	case f.Type == "boolean":
		return "`true`"
	case f.Type == "Object":
		var names []string
		for _, c := range f.Fields {
			names = append(names, c.Name)
		}
		return "`{" + strings.Join(names, ", ") + "}`"
	default:
		if f.Example != "" {
			return "string, as `" + cell(f.Example) + "`"
		}
		return "string"
	}
}

const rulesIntro = `# Rules reference: criteria, variables, operators, behaviors

An Application and a Firewall hold ordered ` + "`rules`" + `. A rule has ` + "`criteria`" + ` (omitted: always)
and ` + "`behaviors`" + `; rules run in list order, and the first terminal behavior ends processing (in an
application, of its phase). The fields of rules are in [manifests.md](manifests.md); in the
terminal, ` + "`edgectl explain variables`" + ` lists the variables (` + "`--engine firewall|application`" + `,
` + "`--phase request|response`" + `) and ` + "`edgectl explain Firewall.spec.rules --recursive`" + ` the fields.

## Criteria

` + "```yaml" + `
criteria:                      # a list of groups; the groups are ANDed
  - - {variable: host, operator: is_equal, argument: api.bank.example}
    - {conditional: and, variable: client_certificate_validation, operator: is_not_equal, argument: "true"}
    - {conditional: or, variable: network, operator: is_in_list, argument: office}
` + "```" + `

A group is a list of comparisons ` + "`{conditional, variable, operator, argument}`" + `. The first one's
` + "`conditional`" + ` is ` + "`if`" + ` (it may be omitted), later ones ` + "`and`" + ` or ` + "`or`" + `; inside a group ` + "`and`" + ` binds
tighter than ` + "`or`" + `, so the group above reads ` + "`(host = … and validation ≠ true) or network in office`" + `.
In a Firewall a variable is written bare (` + "`host`" + `); in an Application as ` + "`${host}`" + `, and the same
` + "`${name}`" + ` form works inside behavior arguments. An unknown variable is a ` + "`validate`" + ` error that names
the closest known one. An argument is compared as a string (` + "`true`" + `, ` + "`10`" + ` are the strings "true",
"10"); regular expressions are RE2 and compiled once, when the manifests are compiled.
`

const firewallVarsIntro = `
## Firewall variables

The Edge Firewall's variables (Azion's names), evaluated before any application rule. Those marked
edgectl go beyond Azion, for certificate pinning.

`

const appVarsIntro = `
## Application variables

Written ` + "`${name}`" + ` in criteria and in behavior arguments. Request-phase rules see the request and the
TLS connection; response-phase rules also see the response. The ` + "`ssl_client_*`" + ` variables are empty
(absent for ` + "`exists`" + `) when the client sent no certificate, except ` + "`ssl_client_verify`" + `, which is then
` + "`NONE`" + `.

`

const appVarsOutro = `
Every value placed in a header is free of raw control characters: the DN forms escape them as
OpenSSL 3 does, other values percent-encode CR, LF, NUL and DEL. The exact bytes of the DN forms,
the serial, the dates and the PEM forms, and the mapping of every nginx ` + "`$ssl_*`" + ` variable to its
edgectl name, are in [the nginx mapping](../nginx-variables.md).
`

const behaviorsIntro = `A behavior is a one-key map, such as ` + "`- addRequestHeader: \"Client-Cert: ${ssl_client_escaped_cert}\"`" + `;
behaviors without an argument take ` + "`true`" + `. In an application, ` + "`deny`" + `, ` + "`noContent`" + `, ` + "`redirectTo301`" + `,
` + "`redirectTo302`" + `, ` + "`deliver`" + ` and ` + "`finishRequestPhase`" + ` end the phase (` + "`redirectHttpToHttps`" + ` only for a
plain-HTTP request); header behaviors and ` + "`rewriteRequest`" + ` do not, so later behaviors and rules still
run, and ` + "`validate`" + ` warns about a behavior placed after one that ends the phase. A rule's ` + "`phase`" + ` (default ` + "`request`" + `) decides which behaviors
it may use.
`

const headerRules = `
### Header arguments

A header argument is ` + "`\"Name: value\"`" + `: the name is letters, digits, ` + "`_`" + ` and ` + "`-`" + `, the whole argument at
most 1,600 characters, and the value may use variables. Rules cannot add or filter ` + "`Host`" + `,
` + "`Connection`" + `, ` + "`Range`" + `, ` + "`X-Forwarded-For`" + `, ` + "`Cdn-Loop`" + `, nor the framing headers (` + "`Content-Length`" + `,
` + "`Transfer-Encoding`" + `, ` + "`TE`" + `, ` + "`Trailer`" + `, ` + "`Upgrade`" + `, ` + "`Keep-Alive`" + `, ` + "`Proxy-Connection`" + `). Every header name
that any rule of the application adds or filters is first removed from the client's request,
with its ` + "`_`" + ` and case variants, so a client cannot send its own ` + "`Client-Cert`" + `.
`

const mtlsSemantics = `
## Enforce and Permissive

A Domain's ` + "`mtls`" + ` decides what happens in the TLS handshake:

- **mTLS off** (no ` + "`mtls`" + ` or ` + "`enabled: false`" + `): no client certificate is requested;
  ` + "`ssl_client_verify`" + ` is ` + "`NONE`" + `.
- **Enforce** (` + "`verification: enforce`" + `, the default): a valid client certificate is required. It
  is verified against the domain's TrustedCA (chain, ` + "`verifyDepth`" + `, validity, extended key usage
  clientAuth, CRLs); any failure ends the handshake with a TLS alert and the origin is never
  reached. A request that gets through has ` + "`ssl_client_verify`" + ` = ` + "`SUCCESS`" + `.
- **Permissive** (` + "`verification: permissive`" + `): a certificate is requested, verified by edgectl itself,
  and the result recorded; the handshake succeeds whatever the result, and the rules decide (a
  firewall rule on ` + "`client_certificate_validation`" + ` or ` + "`ssl_verification_status`" + `, an application rule
  on ` + "`${ssl_client_verify}`" + `).

Resumed sessions never cross domains or trust stores (per-domain ticket keys), the extra checks
run on resumed sessions too, and there is no renegotiation. The SNI selects the domain (exact
hostname, then wildcard); an unknown or missing SNI refuses the handshake with
` + "`unrecognized_name`" + `, and a Host that belongs to another domain than the SNI is answered 421.

### TLS alerts and ` + "`FAILED:`" + ` reasons

| client certificate | ` + "`ssl_client_verify`" + ` (Permissive) | ` + "`ssl_verification_status`" + ` | Enforce alert |
| --- | --- | --- | --- |
| none | ` + "`NONE`" + ` | ` + "`MISSING_CLIENT_CERTIFICATE`" + ` | ` + "`certificate_required`" + ` (TLS 1.3), ` + "`handshake_failure`" + ` (TLS 1.2) |
| valid | ` + "`SUCCESS`" + ` | ` + "`SUCCESS`" + ` | none: accepted |
| issuer not trusted | ` + "`FAILED:unable to get local issuer certificate`" + ` (issuers sent), ` + "`FAILED:unable to verify the first certificate`" + ` (leaf alone) | ` + "`CERTIFICATE_VERIFICATION_ERROR`" + ` | ` + "`unknown_ca`" + ` |
| self-signed | ` + "`FAILED:self-signed certificate`" + `, ` + "`FAILED:self-signed certificate in certificate chain`" + ` | same | ` + "`unknown_ca`" + ` |
| expired | ` + "`FAILED:certificate has expired`" + ` | same | ` + "`certificate_expired`" + ` |
| not yet valid | ` + "`FAILED:certificate is not yet valid`" + ` | same | ` + "`certificate_expired`" + ` |
| more intermediates than ` + "`verifyDepth`" + ` | ` + "`FAILED:unable to get local issuer certificate`" + ` (OpenSSL stops building the chain there) | same | ` + "`bad_certificate`" + ` |
| not for client authentication | ` + "`FAILED:unsuitable certificate purpose`" + ` | same | ` + "`bad_certificate`" + ` |
| revoked by a CRL | ` + "`FAILED:certificate revoked`" + ` | same | ` + "`bad_certificate`" + ` |
| CRL past its ` + "`nextUpdate`" + ` | ` + "`FAILED:CRL has expired`" + ` | same | ` + "`bad_certificate`" + ` |
| path length, name constraints, more than 32 certificates, anything else | ` + "`FAILED:path length constraint exceeded`" + `, ` + "`FAILED:permitted subtree violation`" + `, ` + "`FAILED:excluded subtree violation`" + `, ` + "`FAILED:certificate chain too long`" + `, ` + "`FAILED:certificate verify failed`" + ` (the Go error goes to the log) | same | ` + "`bad_certificate`" + ` |

The reasons are OpenSSL's wording, as nginx reports them, so origins written for nginx keep
working; when several checks fail, the reason is the one nginx reports. Every reason, and when
it applies, is in [the nginx mapping's verify reasons](../nginx-variables.md#verify-reasons). Go's TLS server
chooses the alert for its own verification and sends ` + "`bad_certificate`" + ` for the extra checks, hence
` + "`certificate_expired`" + ` for a certificate that is not yet valid and ` + "`bad_certificate`" + ` for a revoked one:
the handshake is refused in every case, and ` + "`edgectl test`" + ` can assert the alert (` + "`expect.alert`" + `).
`

const departures = `
## Where edgectl departs from Azion

edgectl follows Azion's "How to configure mTLS" model (Trusted CAs, domains in Enforce or
Permissive mode, the Edge Firewall and Edge Application rules engines). Where Azion is silent or
differs, edgectl chooses the behaviour nginx, HAProxy and Envoy users expect:

- **More variables.** Firewall: ` + "`ssl_client_fingerprint`" + `, ` + "`ssl_client_fingerprint_sha256`" + `, ` + "`ssl_client_s_dn`" + `,
  ` + "`ssl_client_s_dn_parsed`" + ` and ` + "`ssl_client_serial`" + ` for certificate pinning. Application: the RFC 2253 DN
  forms, the SHA-256 fingerprint, the SANs, the RFC 8705 thumbprint, Envoy's XFCC element and the
  other variables marked edgectl above.
- **` + "`ssl_client_cert`" + ` is one line**, an alias of ` + "`ssl_client_escaped_cert`" + `: a multi-line PEM cannot travel
  in a header.
- **Exact formats.** DNs are OpenSSL 3's byte for byte, ` + "`FAILED:`" + ` reasons are OpenSSL's wording, and
  every value put in a header is free of control characters.
- **Unknown names are errors.** Unknown fields, variables, operators and behaviors fail
  ` + "`edgectl validate`" + ` with the closest known name; nothing is ignored.
- **Identity headers cannot be spoofed.** A header that any rule adds or filters is removed from
  the client's request first, and more headers are protected (above).
- **Strict routing.** An unknown SNI refuses the handshake (` + "`unrecognized_name`" + `), never a default
  certificate; a Host of another domain than the SNI gets 421; header names with ` + "`_`" + ` are dropped.
- **` + "`setRateLimit`" + ` is terminal only when it refuses** (429): under the limit, later rules still run, so
  an unconditional rate limit cannot let unverified clients skip a later deny rule.
- **Response-phase rules apply to the origin's responses**, not to answers the edge makes itself
  (403, 421, 429, redirects, 502/504).
- **` + "`is_in_list`" + ` compares the client address** (` + "`network`" + `, ` + "`${remote_addr}`" + `) with a NetworkList.
- **Alerts.** In Enforce mode, a not-yet-valid certificate gets ` + "`certificate_expired`" + ` and a revoked one
  ` + "`bad_certificate`" + ` (above).
`
