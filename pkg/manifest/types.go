package manifest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the only manifest API version this build understands.
const APIVersion = "edgectl.dev/v1"

// Kinds of resource.
const (
	KindCertificate = "Certificate"
	KindTrustedCA   = "TrustedCA"
	KindNetworkList = "NetworkList"
	KindApplication = "Application"
	KindFirewall    = "Firewall"
	KindDomain      = "Domain"
	KindTestSuite   = "TestSuite"
)

// Kinds lists every kind in dependency order: what a kind refers to comes
// before it.
var Kinds = []string{KindCertificate, KindTrustedCA, KindNetworkList, KindApplication, KindFirewall, KindDomain, KindTestSuite}

// Metadata names a resource.
type Metadata struct {
	// Name identifies the resource among those of its kind: lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit.
	// +pattern=^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$
	// +example=open-banking
	Name string `yaml:"name" json:"name"`
	// Labels are free-form key/value pairs for humans and tooling; edgectl does not interpret them.
	// +example={team: payments}
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// CertificateSpec is the edge (server) certificate that a domain presents to clients.
// +oneOf=certificate,certificateFile
// +oneOf=privateKeyFile,privateKeyEnv
type CertificateSpec struct {
	// Certificate is the PEM certificate chain, leaf first, written inline. Use either certificate or certificateFile.
	// +example=|\n  -----BEGIN CERTIFICATE-----\n  MIIB...\n  -----END CERTIFICATE-----
	Certificate string `yaml:"certificate,omitempty" json:"certificate,omitempty"`
	// CertificateFile is the path of a PEM certificate chain, leaf first, relative to the manifest's directory.
	// +example=certs/api.pem
	CertificateFile string `yaml:"certificateFile,omitempty" json:"certificateFile,omitempty"`
	// PrivateKeyFile is the path of the PEM private key of the leaf certificate, relative to the manifest's directory. Keys are never written inline.
	// +example=certs/api-key.pem
	PrivateKeyFile string `yaml:"privateKeyFile,omitempty" json:"privateKeyFile,omitempty"`
	// PrivateKeyEnv is the name of an environment variable holding the PEM private key of the leaf certificate.
	// +example=API_CERT_KEY
	PrivateKeyEnv string `yaml:"privateKeyEnv,omitempty" json:"privateKeyEnv,omitempty"`
	// PublicKeyFingerprint is set by edgectl in the state, never in a manifest:
	// the SHA-256 fingerprint of the leaf's public key, so that a plan shows a
	// key rotation without holding the key.
	PublicKeyFingerprint string `yaml:"-" json:"publicKeyFingerprint,omitempty"`
}

// DefaultVerifyDepth is the verify depth when verifyDepth is not set: up to three intermediate CAs between the client's certificate and the trusted CA.
const DefaultVerifyDepth = 3

// TrustedCASpec is a CA bundle that verifies client certificates (Azion's "Trusted CA certificate").
// +oneOf=certificate,certificateFile
type TrustedCASpec struct {
	// Certificate is the PEM bundle of CA certificates (roots and/or intermediates), written inline. Every certificate must be a CA. Use either certificate or certificateFile.
	// +example=|\n  -----BEGIN CERTIFICATE-----\n  MIIB...\n  -----END CERTIFICATE-----
	Certificate string `yaml:"certificate,omitempty" json:"certificate,omitempty"`
	// CertificateFile is the path of the PEM bundle of CA certificates, relative to the manifest's directory.
	// +example=certs/partner-ca.pem
	CertificateFile string `yaml:"certificateFile,omitempty" json:"certificateFile,omitempty"`
	// CRL holds one or more PEM certificate revocation lists, written inline; each must be signed by a CA of the bundle.
	// +example=|\n  -----BEGIN X509 CRL-----\n  MIIB...\n  -----END X509 CRL-----
	CRL string `yaml:"crl,omitempty" json:"crl,omitempty"`
	// CRLFiles are paths of PEM or DER certificate revocation lists, relative to the manifest's directory; each must be signed by a CA of the bundle.
	// +example=[certs/partner-ca.crl]
	CRLFiles []string `yaml:"crlFiles,omitempty" json:"crlFiles,omitempty"`
	// VerifyDepth is the maximum number of intermediate CA certificates between the client's certificate and the trusted CA, as nginx's ssl_verify_depth and OpenSSL's verify depth count them: 1 accepts a client certificate issued by an intermediate that a trusted CA issued (default 3).
	// +minimum=1
	// +maximum=16
	// +default=3
	// +example=1
	VerifyDepth *int `yaml:"verifyDepth,omitempty" json:"verifyDepth,omitempty"`
}

// NetworkListSpec is a named list of networks that rules test with is_in_list and is_not_in_list.
type NetworkListSpec struct {
	// Type of the items; only ipCidr is supported.
	// +enum=ipCidr
	Type string `yaml:"type" json:"type"`
	// Items are IPv4 or IPv6 addresses or CIDR prefixes, such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7.
	// +minItems=1
	// +example=[10.0.0.0/8, 2001:db8::/32, 192.0.2.7]
	Items []string `yaml:"items" json:"items"`
}

// ApplicationSpec is an origin plus the application rules engine (Azion Edge Application).
type ApplicationSpec struct {
	// Origin is the upstream server that requests are proxied to.
	Origin Origin `yaml:"origin" json:"origin"`
	// Rules run in list order in their phase; the first terminal behavior ends the phase.
	Rules []AppRule `yaml:"rules,omitempty" json:"rules,omitempty"`
	// MaxRequestBodySize is the largest request body accepted, such as 10MiB; a larger one is answered 413 Content Too Large, before the origin is contacted when its Content-Length announces it, and as soon as the limit is crossed otherwise. "0" accepts any size (default 10MiB).
	// +default=10MiB
	// +example=1MiB
	MaxRequestBodySize ByteSize `yaml:"maxRequestBodySize,omitempty" json:"maxRequestBodySize,omitempty"`
	// RequestBuffering reads a request body into memory, up to a size, before an origin connection is taken, as nginx's proxy_request_buffering and HAProxy's http-buffer-request do, so that a slow uploader holds no origin connection (default on, 64KiB).
	// +example={enabled: true, size: 256KiB}
	RequestBuffering *RequestBuffering `yaml:"requestBuffering,omitempty" json:"requestBuffering,omitempty"`
	// Paths sets how request paths are normalised and which path the origin receives.
	// +example={escapedSlashes: reject}
	Paths *PathPolicy `yaml:"paths,omitempty" json:"paths,omitempty"`
	// UnderscoresInHeaders accepts request header names that contain '_' (nginx's underscores_in_headers); by default they are dropped. Even when accepted, underscore spellings of the forwarding (X_Forwarded_For...), framing (Content_Length, Transfer_Encoding...) and client-identity headers are always dropped.
	// +default=false
	UnderscoresInHeaders bool `yaml:"underscoresInHeaders,omitempty" json:"underscoresInHeaders,omitempty"`
}

// ByteSize is a size in bytes: a whole number, optionally followed by B, KiB, MiB or GiB, such as 65536, 64KiB or 10MiB.
// +pattern=^[0-9]+(B|KiB|MiB|GiB)?$
type ByteSize string

// Parse returns the number of bytes.
func (s ByteSize) Parse() (int64, error) {
	str := string(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSuffix(str, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 || str == "" || str[0] == '+' || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size such as 65536, 64KiB or 10MiB", string(s))
	}
	return n * mult, nil
}

// Default limits of an application.
const (
	DefaultMaxRequestBodySize   = ByteSize("10MiB")
	DefaultRequestBufferingSize = ByteSize("64KiB")
	// DefaultMaxConnections is Envoy's default circuit-breaker limit of connections per upstream cluster.
	DefaultMaxConnections = 1024
	// DefaultMaxQueue is Envoy's default limit of pending requests per upstream cluster.
	DefaultMaxQueue = 1024
	// MaxRequestBufferingSize is the largest requestBuffering.size: buffers are memory, one per request being uploaded.
	MaxRequestBufferingSize = 64 << 20
)

// RequestBuffering configures request-body buffering.
type RequestBuffering struct {
	// Enabled turns buffering on (default true).
	// +default=true
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Size is how much of a body is read before the origin is contacted (default 64KiB): a body up to this size reaches the origin whole, from memory; the rest of a larger body is streamed once its first size bytes arrived. At most 64MiB; no more than maxRequestBodySize is ever buffered.
	// +default=64KiB
	// +example=256KiB
	Size ByteSize `yaml:"size,omitempty" json:"size,omitempty"`
}

// Escaped-slash policies, after Envoy's path_with_escaped_slashes_action.
const (
	EscapedSlashesUnescape = "unescape"
	EscapedSlashesKeep     = "keep"
	EscapedSlashesReject   = "reject"
)

// Which path the origin receives.
const (
	OriginPathNormalized = "normalized"
	OriginPathOriginal   = "original"
)

// PathPolicy sets how request paths are normalised.
type PathPolicy struct {
	// EscapedSlashes is what happens to %2F, %5C and '\' in a path: unescape (the default) turns them into '/' before normalising, so that rules and the origin see the path that a decoding origin would serve; keep leaves %2F and %5C encoded, so that they never separate segments ('\' is sent as %5C); reject answers 400 Bad Request.
	// +enum=unescape,keep,reject
	// +default=unescape
	EscapedSlashes string `yaml:"escapedSlashes,omitempty" json:"escapedSlashes,omitempty"`
	// Origin is the path the origin receives: normalized (the default), the path the rules saw, or original, the path exactly as the client sent it (rules still see the normalised path; the firewall and the origin may then disagree).
	// +enum=normalized,original
	// +default=normalized
	Origin string `yaml:"origin,omitempty" json:"origin,omitempty"`
}

// Duration is a Go duration string such as 500ms, 5s or 1m30s.
// +pattern=^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$
type Duration string

// Parse returns the duration value.
func (d Duration) Parse() (time.Duration, error) { return time.ParseDuration(string(d)) }

// Default origin settings.
const (
	DefaultHostHeader      = "${host}"
	DefaultConnectTimeout  = Duration("5s")
	DefaultResponseTimeout = Duration("60s")
)

// Origin is the upstream server of an application.
type Origin struct {
	// URL of the origin: http:// or https://, host and optional port, optional base path.
	// +pattern=^https?://
	// +example=http://127.0.0.1:9000
	URL string `yaml:"url" json:"url"`
	// HostHeader is the Host header sent to the origin; it may use variables (default ${host}, the client's Host).
	// +default=${host}
	// +example=origin.internal
	HostHeader string `yaml:"hostHeader,omitempty" json:"hostHeader,omitempty"`
	// ConnectTimeout bounds the TCP and TLS connection to the origin (default 5s).
	// +default=5s
	// +example=2s
	ConnectTimeout Duration `yaml:"connectTimeout,omitempty" json:"connectTimeout,omitempty"`
	// ResponseTimeout bounds the wait for the origin's response headers, and each wait for more of its body, as nginx's proxy_read_timeout does (default 60s).
	// +default=60s
	// +example=30s
	ResponseTimeout Duration `yaml:"responseTimeout,omitempty" json:"responseTimeout,omitempty"`
	// TLS configures how the edge verifies an https origin.
	TLS *OriginTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// MaxConnections is the most connections open to the origin at once, idle ones included (default 1024, Envoy's circuit-breaker default). A request that finds them all busy waits in the queue.
	// +minimum=1
	// +default=1024
	// +example=256
	MaxConnections *int `yaml:"maxConnections,omitempty" json:"maxConnections,omitempty"`
	// MaxQueue is the most requests waiting for an origin connection (default 1024); a request that finds the queue full is answered 503 Service Unavailable with Retry-After. 0 queues none.
	// +minimum=0
	// +default=1024
	// +example=0
	MaxQueue *int `yaml:"maxQueue,omitempty" json:"maxQueue,omitempty"`
	// QueueTimeout bounds a request's wait in the queue, after which it is answered 503 with Retry-After (default: the connectTimeout, as HAProxy's timeout queue).
	// +example=2s
	QueueTimeout Duration `yaml:"queueTimeout,omitempty" json:"queueTimeout,omitempty"`
}

// OriginTLS configures the edge's TLS client towards an https origin.
type OriginTLS struct {
	// CA is an inline PEM bundle that verifies the origin's certificate instead of the system roots.
	CA string `yaml:"ca,omitempty" json:"ca,omitempty"`
	// CAFile is the path of a PEM bundle that verifies the origin's certificate instead of the system roots, relative to the manifest's directory.
	// +example=certs/origin-ca.pem
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	// ServerName is the name sent in SNI and checked in the origin's certificate (default: the URL's host).
	// +example=origin.internal
	ServerName string `yaml:"serverName,omitempty" json:"serverName,omitempty"`
	// InsecureSkipVerify disables verification of the origin's certificate. Only for tests.
	// +default=false
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty" json:"insecureSkipVerify,omitempty"`
}

// Rule phases.
const (
	PhaseRequest  = "request"
	PhaseResponse = "response"
)

// AppRule is one rule of the application rules engine.
// +behaviorsByPhase
type AppRule struct {
	// Name describes the rule; it appears in logs.
	// +example=forward client identity
	Name string `yaml:"name" json:"name"`
	// Phase is when the rule runs: request (before the origin) or response (after it). Default request.
	// +enum=request,response
	// +default=request
	Phase string `yaml:"phase,omitempty" json:"phase,omitempty"`
	// Active turns the rule on or off (default true).
	// +default=true
	Active *bool `yaml:"active,omitempty" json:"active,omitempty"`
	// Criteria decide whether the rule applies: a list of groups that are ANDed; omitted means always.
	// +example=[[{variable: "${ssl_client_verify}", operator: is_equal, argument: SUCCESS}]]
	Criteria [][]Criterion `yaml:"criteria,omitempty" json:"criteria,omitempty"`
	// Behaviors run in order when the criteria match.
	// +minItems=1
	// +example=[{addRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"}]
	Behaviors []AppBehavior `yaml:"behaviors" json:"behaviors"`
}

// Criterion is one comparison of a rule's criteria.
// +forbiddenIf=argument:operator=exists,does_not_exist
type Criterion struct {
	// Conditional joins this comparison to the previous one of its group: if (first entry, may be omitted), and, or. Inside a group and binds tighter than or.
	// +enum=if,and,or
	// +default=if
	Conditional string `yaml:"conditional,omitempty" json:"conditional,omitempty"`
	// Variable is what is compared: a firewall variable name such as host, or an application variable such as ${ssl_client_verify}.
	// +example=${ssl_client_verify}
	// +seeAlso=edgectl explain variables (every variable of both engines, its phases, exact format and an example)
	Variable string `yaml:"variable" json:"variable"`
	// Operator is the comparison: is_equal, is_not_equal, starts_with, does_not_start_with, matches, does_not_match, exists, does_not_exist, is_in_list, is_not_in_list.
	// +enum=is_equal,is_not_equal,starts_with,does_not_start_with,matches,does_not_match,exists,does_not_exist,is_in_list,is_not_in_list
	// +example=is_equal
	// +seeAlso=edgectl explain variables (the operators follow the variables)
	Operator string `yaml:"operator" json:"operator"`
	// Argument is the value compared with; a RE2 regular expression for matches, a NetworkList name for is_in_list; absent for exists and does_not_exist.
	// +type=string,number,boolean
	// +example=SUCCESS
	Argument *string `yaml:"argument,omitempty" json:"argument,omitempty"`
}

// AppBehavior is one behavior of an application rule: exactly one field is set.
// +oneKey
type AppBehavior struct {
	// AddRequestHeader adds a header sent to the origin, "Name: value"; the value may use variables.
	// +phase=request
	// +pattern=^[A-Za-z0-9_-]+:
	// +maxLength=1600
	// +example=Client-Cert: ${ssl_client_escaped_cert}
	AddRequestHeader string `yaml:"addRequestHeader,omitempty" json:"addRequestHeader,omitempty"`
	// FilterRequestHeader removes a header before the request reaches the origin.
	// +phase=request
	// +pattern=^[A-Za-z0-9_-]+$
	// +example=X-Debug
	FilterRequestHeader string `yaml:"filterRequestHeader,omitempty" json:"filterRequestHeader,omitempty"`
	// RewriteRequest replaces the path (and query) sent to the origin; it may use variables.
	// +phase=request
	// +example=/v2${uri}
	RewriteRequest string `yaml:"rewriteRequest,omitempty" json:"rewriteRequest,omitempty"`
	// RedirectTo301 answers with a permanent redirect to this URL; it may use variables.
	// +phase=request
	// +example=https://www.bank.example${request_uri}
	RedirectTo301 string `yaml:"redirectTo301,omitempty" json:"redirectTo301,omitempty"`
	// RedirectTo302 answers with a temporary redirect to this URL; it may use variables.
	// +phase=request
	// +example=https://login.bank.example/
	RedirectTo302 string `yaml:"redirectTo302,omitempty" json:"redirectTo302,omitempty"`
	// RedirectHTTPToHTTPS redirects plain-HTTP requests to https with a 301.
	// +phase=request
	RedirectHTTPToHTTPS bool `yaml:"redirectHttpToHttps,omitempty" json:"redirectHttpToHttps,omitempty"`
	// Deny answers 403 Forbidden without reaching the origin.
	// +phase=request
	Deny bool `yaml:"deny,omitempty" json:"deny,omitempty"`
	// NoContent answers 204 No Content without reaching the origin.
	// +phase=request
	NoContent bool `yaml:"noContent,omitempty" json:"noContent,omitempty"`
	// Deliver stops the rules of the current phase and continues: to the origin in the request phase, to the client in the response phase.
	// +phase=request,response
	Deliver bool `yaml:"deliver,omitempty" json:"deliver,omitempty"`
	// FinishRequestPhase stops the request-phase rules and sends the request to the origin.
	// +phase=request
	FinishRequestPhase bool `yaml:"finishRequestPhase,omitempty" json:"finishRequestPhase,omitempty"`
	// AddResponseHeader adds a header to the response sent to the client, "Name: value"; the value may use variables.
	// +phase=response
	// +pattern=^[A-Za-z0-9_-]+:
	// +maxLength=1600
	// +example=Strict-Transport-Security: max-age=63072000
	AddResponseHeader string `yaml:"addResponseHeader,omitempty" json:"addResponseHeader,omitempty"`
	// FilterResponseHeader removes a header from the origin's response.
	// +phase=response
	// +pattern=^[A-Za-z0-9_-]+$
	// +example=Server
	FilterResponseHeader string `yaml:"filterResponseHeader,omitempty" json:"filterResponseHeader,omitempty"`
}

// FirewallSpec is an ordered list of firewall rules (Azion Edge Firewall rules engine).
type FirewallSpec struct {
	// Rules run in list order before the application; the first matching rule's behavior ends processing.
	Rules []FirewallRule `yaml:"rules" json:"rules"`
}

// FirewallRule is one rule of the firewall rules engine.
type FirewallRule struct {
	// Name describes the rule; it appears in logs and metrics.
	// +example=deny partners without a valid certificate
	Name string `yaml:"name" json:"name"`
	// Active turns the rule on or off (default true).
	// +default=true
	Active *bool `yaml:"active,omitempty" json:"active,omitempty"`
	// Criteria decide whether the rule applies: a list of groups that are ANDed; omitted means always.
	// +example=[[{variable: client_certificate_validation, operator: is_not_equal, argument: "true"}]]
	Criteria [][]Criterion `yaml:"criteria,omitempty" json:"criteria,omitempty"`
	// Behaviors run when the criteria match; every firewall behavior is terminal.
	// +minItems=1
	// +example=[{deny: true}]
	Behaviors []FirewallBehavior `yaml:"behaviors" json:"behaviors"`
}

// FirewallBehavior is one behavior of a firewall rule: exactly one field is set.
// +oneKey
type FirewallBehavior struct {
	// Deny answers 403 Forbidden.
	Deny bool `yaml:"deny,omitempty" json:"deny,omitempty"`
	// Drop closes the connection without a response.
	Drop bool `yaml:"drop,omitempty" json:"drop,omitempty"`
	// SetRateLimit answers 429 Too Many Requests when a token bucket is empty.
	SetRateLimit *RateLimit `yaml:"setRateLimit,omitempty" json:"setRateLimit,omitempty"`
	// SetCustomResponse answers with a fixed status and body.
	SetCustomResponse *CustomResponse `yaml:"setCustomResponse,omitempty" json:"setCustomResponse,omitempty"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// Type is the period of averageRateLimit: second or minute.
	// +enum=second,minute
	Type string `yaml:"type" json:"type"`
	// LimitBy keeps one bucket per client IP (clientIp) or one for everybody (global).
	// +enum=clientIp,global
	LimitBy string `yaml:"limitBy" json:"limitBy"`
	// AverageRateLimit is the number of requests allowed per period.
	// +minimum=1
	// +example=10
	AverageRateLimit int `yaml:"averageRateLimit" json:"averageRateLimit"`
	// MaximumBurstSize is the bucket size: requests allowed at once (default averageRateLimit).
	// +minimum=1
	// +example=20
	MaximumBurstSize int `yaml:"maximumBurstSize,omitempty" json:"maximumBurstSize,omitempty"`
}

// CustomResponse is a fixed response sent by the firewall.
type CustomResponse struct {
	// StatusCode of the response, 200 to 499.
	// +minimum=200
	// +maximum=499
	// +example=451
	StatusCode int `yaml:"statusCode" json:"statusCode"`
	// ContentType of the response body (default text/plain; charset=utf-8).
	// +default=text/plain; charset=utf-8
	// +example=application/json
	ContentType string `yaml:"contentType,omitempty" json:"contentType,omitempty"`
	// ContentBody is the response body, at most 500 characters.
	// +minLength=0
	// +maxLength=500
	// +example={"error": "certificate required"}
	ContentBody string `yaml:"contentBody,omitempty" json:"contentBody,omitempty"`
}

// DomainSpec binds hostnames to a certificate, an application, an optional firewall and mTLS settings.
type DomainSpec struct {
	// Hostnames served by the domain; a wildcard is allowed only as the whole left-most label (*.example.com). A hostname belongs to one domain only.
	// +minItems=1
	// +uniqueItems
	// +example=[api.bank.example, "*.partners.bank.example"]
	Hostnames []string `yaml:"hostnames" json:"hostnames"`
	// Certificate is the name of the Certificate presented for these hostnames.
	// +ref=Certificate
	// +example=api-cert
	Certificate string `yaml:"certificate" json:"certificate"`
	// Application is the name of the Application that handles requests.
	// +ref=Application
	// +example=banking-api
	Application string `yaml:"application" json:"application"`
	// Firewall is the name of the Firewall whose rules run before the application (optional).
	// +ref=Firewall
	// +example=partner-firewall
	Firewall string `yaml:"firewall,omitempty" json:"firewall,omitempty"`
	// MTLS configures client-certificate verification; omitted means no client certificate is requested.
	MTLS *MTLS `yaml:"mtls,omitempty" json:"mtls,omitempty"`
}

// mTLS verification modes.
const (
	VerificationEnforce    = "enforce"
	VerificationPermissive = "permissive"
)

// MTLS configures client-certificate verification for a domain.
// +requiredIf=trustedCA:enabled=true
type MTLS struct {
	// Enabled turns client-certificate verification on.
	// +example=true
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Verification is enforce (a valid client certificate is required in the handshake, the default) or permissive (the result is recorded and the rules decide).
	// +enum=enforce,permissive
	// +default=enforce
	Verification string `yaml:"verification,omitempty" json:"verification,omitempty"`
	// TrustedCA is the name of the TrustedCA that verifies client certificates; required when enabled.
	// +ref=TrustedCA
	// +example=partner-ca
	TrustedCA string `yaml:"trustedCA,omitempty" json:"trustedCA,omitempty"`
}

// TestSuiteSpec declares test cases run by edgectl test. Test suites are never deployed.
type TestSuiteSpec struct {
	// Target is the edge address HOST:PORT to test; --target overrides it, and without either the suite runs against an in-process edge.
	// +example=127.0.0.1:8443
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
	// CAFile is the path of a PEM bundle that verifies the edge's certificate, relative to the suite's directory.
	// +example=certs/root.pem
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	// Cases are run in order, each on a fresh TLS connection.
	// +minItems=1
	Cases []TestCase `yaml:"cases" json:"cases"`
}

// TestCase is one handshake and request with its expectations.
type TestCase struct {
	// Name identifies the case in reports; unique within the suite.
	// +example=partner with a valid certificate reaches the origin
	Name string `yaml:"name" json:"name"`
	// ServerName is the SNI sent in the ClientHello.
	// +example=api.bank.example
	ServerName string `yaml:"serverName" json:"serverName"`
	// ClientCertificate is presented when the edge asks for one; omitted means no certificate.
	ClientCertificate *ClientCertificate `yaml:"clientCertificate,omitempty" json:"clientCertificate,omitempty"`
	// TLS limits the protocol versions the client offers.
	TLS *TestTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Request is the HTTP request sent after the handshake (default GET /).
	Request *TestRequest `yaml:"request,omitempty" json:"request,omitempty"`
	// Expect lists what must be observed.
	Expect Expect `yaml:"expect" json:"expect"`
}

// ClientCertificate is a certificate and key presented by a test client.
type ClientCertificate struct {
	// CertificateFile is the path of the PEM certificate chain, relative to the suite's directory.
	// +example=certs/partner.pem
	CertificateFile string `yaml:"certificateFile" json:"certificateFile"`
	// PrivateKeyFile is the path of the PEM private key, relative to the suite's directory.
	// +example=certs/partner-key.pem
	PrivateKeyFile string `yaml:"privateKeyFile" json:"privateKeyFile"`
}

// TestTLS limits the TLS versions of a test client.
type TestTLS struct {
	// MinVersion is the lowest TLS version offered: "1.2" or "1.3".
	// +enum=1.2,1.3
	MinVersion string `yaml:"minVersion,omitempty" json:"minVersion,omitempty"`
	// MaxVersion is the highest TLS version offered: "1.2" or "1.3".
	// +enum=1.2,1.3
	MaxVersion string `yaml:"maxVersion,omitempty" json:"maxVersion,omitempty"`
}

// TestRequest is the HTTP request of a test case.
type TestRequest struct {
	// Method is the HTTP method (default GET).
	// +pattern=^[A-Z]+$
	// +default=GET
	// +example=POST
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// Path is the request target, with an optional query (default /).
	// +default=/
	// +example=/accounts?limit=10
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Headers are sent with the request; a Host header may differ from the SNI.
	// +example={Accept: application/json}
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Body is sent as the request body.
	// +minLength=0
	// +example={"amount": 10}
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
}

// Expect is what a test case must observe.
type Expect struct {
	// Handshake is accepted or rejected.
	// +enum=accepted,rejected
	Handshake string `yaml:"handshake,omitempty" json:"handshake,omitempty"`
	// Alert is the TLS alert name of a rejection, such as certificate_required, bad_certificate, unknown_ca or certificate_expired.
	// +example=certificate_required
	Alert string `yaml:"alert,omitempty" json:"alert,omitempty"`
	// Status is the expected HTTP status code.
	// +minimum=100
	// +maximum=599
	// +example=200
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Headers are expected response headers: an exact value, or a RE2 regular expression after "~".
	// +example={Content-Type: "~^application/json"}
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Body is a string the response body must contain.
	// +minLength=0
	// +example=ok
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
	// OriginReached says whether the request must (true) or must not (false) reach the origin.
	// +example=false
	OriginReached *bool `yaml:"originReached,omitempty" json:"originReached,omitempty"`
	// OriginHeaders are headers the origin must receive: an exact value, or a RE2 regular expression after "~".
	// +example={Client-Cert-Subject: partner-app}
	OriginHeaders map[string]string `yaml:"originHeaders,omitempty" json:"originHeaders,omitempty"`
	// OriginAbsentHeaders are header names the origin must not receive.
	// +example=[Client-Cert]
	OriginAbsentHeaders []string `yaml:"originAbsentHeaders,omitempty" json:"originAbsentHeaders,omitempty"`
}
