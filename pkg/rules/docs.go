package rules

import (
	"slices"
	"strings"
)

// The engines a variable belongs to.
const (
	EngineFirewall    = "firewall"
	EngineApplication = "application"
)

// VariableDoc documents one variable of one engine. The reference in
// docs/reference/rules.md and `edgectl explain variables` are generated
// from VariableDocs, and a test keeps it equal to the names the engines
// resolve, so a variable cannot be added without its documentation.
type VariableDoc struct {
	// Name is the variable as written without ${}: "host", or for a family
	// "http_<header>" (the part before "<" is the prefix).
	Name string `json:"name"`
	// Engine is EngineFirewall (bare names in criteria) or
	// EngineApplication (${name} in criteria and behavior arguments).
	Engine string `json:"engine"`
	// Phases are the rule phases the variable exists in: request,
	// response, or both.
	Phases []string `json:"phases"`
	// Format is the exact form of the value.
	Format string `json:"format"`
	// Example is a value as the origin or the rule sees it.
	Example string `json:"example"`
	// Origin says where the variable comes from: Azion, nginx, or edgectl
	// (beyond both).
	Origin string `json:"origin"`
}

// Prefix returns the prefix of a family such as "http_<header>" and true,
// or "" and false for a plain name.
func (d VariableDoc) Prefix() (string, bool) {
	p, _, ok := strings.Cut(d.Name, "<")
	return p, ok
}

var (
	reqOnly  = []string{"request"}
	both     = []string{"request", "response"}
	respOnly = []string{"response"}
)

// VariableDocs documents every variable, the firewall's first.
var VariableDocs = []VariableDoc{
	// Firewall (Azion Edge Firewall); criteria name them bare, as in
	// {variable: host, operator: is_equal, argument: api.bank.example}.
	{Name: "host", Engine: EngineFirewall, Phases: reqOnly, Format: "The request's host, lowercased, without the port.", Example: "api.bank.example", Origin: "Azion"},
	{Name: "request_uri", Engine: EngineFirewall, Phases: reqOnly, Format: "The normalised, decoded path, without the query (dot segments removed, slashes merged).", Example: "/accounts/42", Origin: "Azion"},
	{Name: "request_target_raw", Engine: EngineFirewall, Phases: reqOnly, Format: "The request target exactly as the client sent it: path and query, not normalised nor decoded (an absolute-form target as sent). Rules that must match what the origin serves test request_uri instead.", Example: "/accounts/../admin?x=1", Origin: "edgectl"},
	{Name: "request_method", Engine: EngineFirewall, Phases: reqOnly, Format: "The HTTP method, as sent.", Example: "GET", Origin: "Azion"},
	{Name: "request_args", Engine: EngineFirewall, Phases: reqOnly, Format: "The raw query string, without '?'; empty when there is none.", Example: "limit=10&from=2026-01-01", Origin: "Azion"},
	{Name: "scheme", Engine: EngineFirewall, Phases: reqOnly, Format: "https (the edge serves TLS only).", Example: "https", Origin: "Azion"},
	{Name: "header_accept", Engine: EngineFirewall, Phases: reqOnly, Format: "The Accept header; several values joined by \", \".", Example: "application/json", Origin: "Azion"},
	{Name: "header_accept_encoding", Engine: EngineFirewall, Phases: reqOnly, Format: "The Accept-Encoding header.", Example: "gzip, br", Origin: "Azion"},
	{Name: "header_accept_language", Engine: EngineFirewall, Phases: reqOnly, Format: "The Accept-Language header.", Example: "pt-BR,en;q=0.8", Origin: "Azion"},
	{Name: "header_cookie", Engine: EngineFirewall, Phases: reqOnly, Format: "The Cookie header, as sent.", Example: "session=abc123", Origin: "Azion"},
	{Name: "header_origin", Engine: EngineFirewall, Phases: reqOnly, Format: "The Origin header.", Example: "https://portal.bank.example", Origin: "Azion"},
	{Name: "header_referer", Engine: EngineFirewall, Phases: reqOnly, Format: "The Referer header.", Example: "https://portal.bank.example/login", Origin: "Azion"},
	{Name: "header_user_agent", Engine: EngineFirewall, Phases: reqOnly, Format: "The User-Agent header.", Example: "partner-client/2.1", Origin: "Azion"},
	{Name: "network", Engine: EngineFirewall, Phases: reqOnly, Format: "The client's IP address (IPv4, or IPv6 without brackets); compare it with is_in_list against a NetworkList.", Example: "192.0.2.7", Origin: "Azion"},
	{Name: "client_certificate_validation", Engine: EngineFirewall, Phases: reqOnly, Format: "true when the client presented a certificate that verified, else false.", Example: "true", Origin: "Azion"},
	{Name: "ssl_verification_status", Engine: EngineFirewall, Phases: reqOnly, Format: "SUCCESS, CERTIFICATE_VERIFICATION_ERROR or MISSING_CLIENT_CERTIFICATE.", Example: "CERTIFICATE_VERIFICATION_ERROR", Origin: "Azion"},
	{Name: "ssl_client_fingerprint", Engine: EngineFirewall, Phases: reqOnly, Format: "SHA-1 of the client certificate's DER: 40 lowercase hex digits (certificate pinning).", Example: "3e9f1c0a4b7d2e8f6a5c9b1d0e3f7a2c4b6d8e0f", Origin: "edgectl"},
	{Name: "ssl_client_fingerprint_sha256", Engine: EngineFirewall, Phases: reqOnly, Format: "SHA-256 of the client certificate's DER: 64 lowercase hex digits.", Example: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Origin: "edgectl"},
	{Name: "ssl_client_s_dn", Engine: EngineFirewall, Phases: reqOnly, Format: "The client certificate's subject, OpenSSL's slash form (X509_NAME_oneline).", Example: "/C=BR/O=Partner Bank/CN=partner-app", Origin: "edgectl"},
	{Name: "ssl_client_s_dn_parsed", Engine: EngineFirewall, Phases: reqOnly, Format: "The subject's common name (CN) only.", Example: "partner-app", Origin: "edgectl"},
	{Name: "ssl_client_serial", Engine: EngineFirewall, Phases: reqOnly, Format: "The certificate's serial number: uppercase hex bytes separated by colons.", Example: "5E:61:3B:CB:EE:83:AB:CB", Origin: "edgectl"},

	// Application (Azion Edge Application), written ${name}.
	{Name: "host", Engine: EngineApplication, Phases: both, Format: "The request's host, lowercased, without the port.", Example: "api.bank.example", Origin: "nginx"},
	{Name: "uri", Engine: EngineApplication, Phases: both, Format: "The normalised, decoded path, without the query; the origin receives the same path.", Example: "/accounts/42", Origin: "nginx"},
	{Name: "request_uri", Engine: EngineApplication, Phases: both, Format: "The request target as the client sent it: path and query, not normalised (as nginx's $request_uri); rules that must match what the origin serves test uri instead.", Example: "/accounts/42?limit=10", Origin: "nginx"},
	{Name: "request_target_raw", Engine: EngineApplication, Phases: both, Format: "The same as request_uri: the request target exactly as the client sent it, not normalised (the name the firewall shares).", Example: "/accounts/../admin?x=1", Origin: "edgectl"},
	{Name: "request_method", Engine: EngineApplication, Phases: both, Format: "The HTTP method, as sent.", Example: "POST", Origin: "nginx"},
	{Name: "scheme", Engine: EngineApplication, Phases: both, Format: "https (the edge serves TLS only).", Example: "https", Origin: "nginx"},
	{Name: "args", Engine: EngineApplication, Phases: both, Format: "The raw query string, without '?'.", Example: "limit=10&from=2026-01-01", Origin: "nginx"},
	{Name: "arg_<name>", Engine: EngineApplication, Phases: both, Format: "The first value of the query parameter <name>, as sent (not decoded).", Example: "${arg_limit} → 10", Origin: "nginx"},
	{Name: "http_<header>", Engine: EngineApplication, Phases: both, Format: "The request header <header> (underscores for dashes, any case); several values joined by \", \".", Example: "${http_x_request_id} → 7f3c2a", Origin: "nginx"},
	{Name: "cookie_<name>", Engine: EngineApplication, Phases: both, Format: "The value of the request cookie <name>.", Example: "${cookie_session} → abc123", Origin: "nginx"},
	{Name: "remote_addr", Engine: EngineApplication, Phases: both, Format: "The client's IP address (IPv6 without brackets).", Example: "192.0.2.7", Origin: "nginx"},
	{Name: "remote_port", Engine: EngineApplication, Phases: both, Format: "The client's TCP port, decimal.", Example: "51514", Origin: "nginx"},
	{Name: "server_addr", Engine: EngineApplication, Phases: both, Format: "The edge address that accepted the connection.", Example: "10.0.0.5", Origin: "nginx"},
	{Name: "server_port", Engine: EngineApplication, Phases: both, Format: "The edge port that accepted the connection, decimal.", Example: "8443", Origin: "nginx"},
	{Name: "request", Engine: EngineApplication, Phases: both, Format: "The request line: method, request_uri and protocol, separated by spaces.", Example: "GET /accounts?limit=10 HTTP/1.1", Origin: "nginx"},
	{Name: "ssl_server_name", Engine: EngineApplication, Phases: both, Format: "The SNI the client sent, lowercased, without a trailing dot.", Example: "api.bank.example", Origin: "nginx"},
	{Name: "ssl_protocol", Engine: EngineApplication, Phases: both, Format: "The TLS version in OpenSSL's spelling: TLSv1.2 or TLSv1.3.", Example: "TLSv1.3", Origin: "nginx"},
	{Name: "ssl_cipher", Engine: EngineApplication, Phases: both, Format: "The cipher suite's IANA name, as Go's crypto/tls names it.", Example: "TLS_AES_128_GCM_SHA256", Origin: "nginx"},
	{Name: "ssl_client_verify", Engine: EngineApplication, Phases: both, Format: "SUCCESS, FAILED:<reason> (OpenSSL's wording, see the reasons table) or NONE (no certificate).", Example: "FAILED:certificate has expired", Origin: "Azion"},
	{Name: "ssl_client_escaped_cert", Engine: EngineApplication, Phases: both, Format: "The client's leaf certificate in PEM, percent-encoded (everything but RFC 3986 unreserved characters), one line.", Example: "-----BEGIN%20CERTIFICATE-----%0AMIIB6TCC...%0A-----END%20CERTIFICATE-----%0A", Origin: "Azion"},
	{Name: "ssl_client_cert", Engine: EngineApplication, Phases: both, Format: "Deprecated alias of ssl_client_escaped_cert: the same one-line value (never nginx's multi-line PEM).", Example: "-----BEGIN%20CERTIFICATE-----%0AMIIB6TCC...", Origin: "Azion"},
	{Name: "ssl_client_fingerprint", Engine: EngineApplication, Phases: both, Format: "SHA-1 of the client certificate's DER: 40 lowercase hex digits.", Example: "3e9f1c0a4b7d2e8f6a5c9b1d0e3f7a2c4b6d8e0f", Origin: "Azion"},
	{Name: "ssl_client_fingerprint_sha256", Engine: EngineApplication, Phases: both, Format: "SHA-256 of the client certificate's DER: 64 lowercase hex digits.", Example: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Origin: "edgectl"},
	{Name: "ssl_client_s_dn", Engine: EngineApplication, Phases: both, Format: "The subject in OpenSSL 3's slash form (X509_NAME_oneline): RDNs most significant first, '/' and '+' in values escaped, bytes >= 0x80 and controls as \\xXX.", Example: "/C=BR/O=Partner Bank/CN=partner-app", Origin: "Azion"},
	{Name: "ssl_client_i_dn", Engine: EngineApplication, Phases: both, Format: "The issuer in the same slash form.", Example: "/C=BR/O=Partner Bank/CN=Partner Root CA", Origin: "Azion"},
	{Name: "ssl_client_s_dn_rfc2253", Engine: EngineApplication, Phases: both, Format: "The subject in RFC 2253 form, as OpenSSL 3's X509_NAME_print_ex with XN_FLAG_RFC2253 (least significant first).", Example: "CN=partner-app,O=Partner Bank,C=BR", Origin: "edgectl"},
	{Name: "ssl_client_i_dn_rfc2253", Engine: EngineApplication, Phases: both, Format: "The issuer in RFC 2253 form, as OpenSSL 3's X509_NAME_print_ex with XN_FLAG_RFC2253 (nginx's $ssl_client_i_dn).", Example: "CN=Partner Root CA,O=Partner Bank,C=BR", Origin: "edgectl"},
	{Name: "ssl_client_raw_cert", Engine: EngineApplication, Phases: both, Format: "The client's leaf certificate in PEM on one line: nginx's $ssl_client_raw_cert with each line break replaced by a space, no final one.", Example: "-----BEGIN CERTIFICATE----- MIIB6TCC... -----END CERTIFICATE-----", Origin: "nginx"},
	{Name: "ssl_client_cert_thumbprint_s256", Engine: EngineApplication, Phases: both, Format: "base64url SHA-256 of the certificate's DER, no padding: RFC 8705's cnf.x5t#S256 for certificate-bound tokens.", Example: "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", Origin: "edgectl"},
	{Name: "ssl_client_xfcc", Engine: EngineApplication, Phases: both, Format: "The client identity as one element of Envoy's x-forwarded-client-cert: Hash (SHA-256 hex), Cert (escaped PEM), Subject (RFC 2253), URI and DNS per SAN.", Example: "Hash=9f86d0…;Cert=\"-----BEGIN%20CERTIFICATE-----…\";Subject=\"CN=partner-app,O=Partner Bank,C=BR\";URI=spiffe://partner.example/app", Origin: "edgectl"},
	{Name: "ssl_client_s_dn_parsed", Engine: EngineApplication, Phases: both, Format: "The subject's common name (CN) only; the first one when there are several.", Example: "partner-app", Origin: "Azion"},
	{Name: "ssl_client_serial", Engine: EngineApplication, Phases: both, Format: "The serial number: uppercase hex bytes separated by colons.", Example: "5E:61:3B:CB:EE:83:AB:CB", Origin: "Azion"},
	{Name: "ssl_client_v_start", Engine: EngineApplication, Phases: both, Format: "Start of validity, YYYYMMDDHHmmSS in UTC.", Example: "20261207142515", Origin: "Azion"},
	{Name: "ssl_client_v_end", Engine: EngineApplication, Phases: both, Format: "End of validity, YYYYMMDDHHmmSS in UTC.", Example: "20271207142515", Origin: "Azion"},
	{Name: "ssl_client_v_remain", Engine: EngineApplication, Phases: both, Format: "Whole days until the certificate expires, rounded down, decimal; never negative (0 in its last day and once expired), as nginx.", Example: "364", Origin: "Azion"},
	{Name: "ssl_client_san_dns", Engine: EngineApplication, Phases: both, Format: "The certificate's DNS subject alternative names, comma-separated.", Example: "partner-app.partner.example", Origin: "edgectl"},
	{Name: "ssl_client_san_uri", Engine: EngineApplication, Phases: both, Format: "The certificate's URI subject alternative names (SPIFFE IDs among them), comma-separated.", Example: "spiffe://partner.example/ns/payments/sa/api", Origin: "edgectl"},
	{Name: "status", Engine: EngineApplication, Phases: respOnly, Format: "The status code sent to the client, three digits.", Example: "200", Origin: "nginx"},
	{Name: "sent_http_<header>", Engine: EngineApplication, Phases: respOnly, Format: "The response header <header> as it will be sent to the client.", Example: "${sent_http_content_type} → application/json", Origin: "nginx"},
	{Name: "upstream_status", Engine: EngineApplication, Phases: respOnly, Format: "The status code the origin answered, three digits.", Example: "200", Origin: "nginx"},
	{Name: "upstream_http_<header>", Engine: EngineApplication, Phases: respOnly, Format: "The origin's response header <header>, before response rules change it.", Example: "${upstream_http_server} → gunicorn", Origin: "nginx"},
}

// OperatorDoc documents one criteria operator.
type OperatorDoc struct {
	// Name is the operator as written.
	Name string `json:"name"`
	// Argument describes what argument takes, or "none".
	Argument string `json:"argument"`
	// Description says when the comparison is true.
	Description string `json:"description"`
}

// OperatorDocs documents every operator; a test keeps it equal to the
// operators the engines compile.
var OperatorDocs = []OperatorDoc{
	{"is_equal", "a string", "True when the value equals the argument exactly (a host is compared in lowercase)."},
	{"is_not_equal", "a string", "True when the value differs from the argument, or the variable is absent."},
	{"starts_with", "a string", "True when the value begins with the argument."},
	{"does_not_start_with", "a string", "True when the value does not begin with the argument."},
	{"matches", "an RE2 regular expression", "True when the regular expression matches somewhere in the value (anchor it with ^ and $ for a whole match)."},
	{"does_not_match", "an RE2 regular expression", "True when the regular expression matches nowhere in the value."},
	{"exists", "none", "True when the variable is present: a header that was sent, or a non-empty value."},
	{"does_not_exist", "none", "True when the variable is absent."},
	{"is_in_list", "a NetworkList name", "True when the client address (the firewall's network, the application's ${remote_addr}) is in one of the list's networks."},
	{"is_not_in_list", "a NetworkList name", "True when the client address is in none of the list's networks."},
}

// VariablesFor returns the documented variables of an engine ("" for
// both) available in a phase ("" for any), in VariableDocs order.
func VariablesFor(engine, phase string) []VariableDoc {
	var out []VariableDoc
	for _, d := range VariableDocs {
		if engine != "" && d.Engine != engine {
			continue
		}
		if phase != "" && !slices.Contains(d.Phases, phase) {
			continue
		}
		out = append(out, d)
	}
	return out
}
