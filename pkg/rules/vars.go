package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/pkg/diag"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// Values of ssl_client_verify and of the firewall's ssl_verification_status.
const (
	VerifySuccess = "SUCCESS"
	VerifyNone    = "NONE"

	StatusSuccess            = "SUCCESS"
	StatusVerificationError  = "CERTIFICATE_VERIFICATION_ERROR"
	StatusMissingCertificate = "MISSING_CLIENT_CERTIFICATE"
)

// varKind identifies a variable; evaluation switches on it.
type varKind uint8

const (
	vInvalid varKind = iota
	vHost
	vURI
	vRequestURI
	vMethod
	vScheme
	vArgs
	vArg    // name: the query parameter
	vHTTP   // name: canonical header key
	vCookie // name: the cookie
	vRemoteAddr
	vRemotePort
	vServerAddr
	vServerPort
	vRequest
	vSSLServerName
	vSSLProtocol
	vSSLCipher
	vClientVerify
	vClientEscapedCert
	vClientFingerprint
	vClientFingerprintSHA256
	vClientSDN
	vClientIDN
	vClientSDNRFC2253
	vClientSDNParsed
	vClientSerial
	vClientVStart
	vClientVEnd
	vClientVRemain
	vClientSANDNS
	vClientSANURI
	vClientIDNRFC2253
	vClientRawCert
	vClientThumbprintS256
	vClientXFCC
	vCertValidation     // firewall client_certificate_validation
	vVerificationStatus // firewall ssl_verification_status
	vStatus             // response phase from here on
	vSentHTTP
	vUpstreamStatus
	vUpstreamHTTP
)

// variable is a compiled variable reference.
type variable struct {
	kind varKind
	// name is the header key (canonical), query parameter or cookie name of
	// the prefixed variables.
	name string
	// slot is the variable's entry in Request.memo plus one; 0 means the
	// value is not memoized.
	slot uint8
}

// responseOnly reports whether the variable exists only in the response phase.
func (v variable) responseOnly() bool { return v.kind >= vStatus }

// clientCert reports whether the variable describes the client certificate
// or its verification (used to find rules that can deny unverified clients).
func (v variable) clientCert() bool {
	return v.kind >= vClientVerify && v.kind <= vVerificationStatus
}

// appVars are the application variables without a name suffix.
var appVars = map[string]varKind{
	"host":                            vHost,
	"uri":                             vURI,
	"request_uri":                     vRequestURI,
	"request_target_raw":              vRequestURI,
	"request_method":                  vMethod,
	"scheme":                          vScheme,
	"args":                            vArgs,
	"remote_addr":                     vRemoteAddr,
	"remote_port":                     vRemotePort,
	"server_addr":                     vServerAddr,
	"server_port":                     vServerPort,
	"request":                         vRequest,
	"ssl_server_name":                 vSSLServerName,
	"ssl_protocol":                    vSSLProtocol,
	"ssl_cipher":                      vSSLCipher,
	"ssl_client_verify":               vClientVerify,
	"ssl_client_escaped_cert":         vClientEscapedCert,
	"ssl_client_cert":                 vClientEscapedCert,
	"ssl_client_fingerprint":          vClientFingerprint,
	"ssl_client_fingerprint_sha256":   vClientFingerprintSHA256,
	"ssl_client_s_dn":                 vClientSDN,
	"ssl_client_i_dn":                 vClientIDN,
	"ssl_client_s_dn_rfc2253":         vClientSDNRFC2253,
	"ssl_client_s_dn_parsed":          vClientSDNParsed,
	"ssl_client_serial":               vClientSerial,
	"ssl_client_v_start":              vClientVStart,
	"ssl_client_v_end":                vClientVEnd,
	"ssl_client_v_remain":             vClientVRemain,
	"ssl_client_san_dns":              vClientSANDNS,
	"ssl_client_san_uri":              vClientSANURI,
	"ssl_client_i_dn_rfc2253":         vClientIDNRFC2253,
	"ssl_client_raw_cert":             vClientRawCert,
	"ssl_client_cert_thumbprint_s256": vClientThumbprintS256,
	"ssl_client_xfcc":                 vClientXFCC,
	"status":                          vStatus,
	"upstream_status":                 vUpstreamStatus,
}

// appPrefixes are the application variables with a name suffix, longest
// prefixes first.
var appPrefixes = []struct {
	prefix string
	kind   varKind
}{
	{"upstream_http_", vUpstreamHTTP},
	{"sent_http_", vSentHTTP},
	{"cookie_", vCookie},
	{"http_", vHTTP},
	{"arg_", vArg},
}

// firewallVars are the firewall variables.
var firewallVars = map[string]variable{
	"host":                          {kind: vHost},
	"request_uri":                   {kind: vURI},
	"request_target_raw":            {kind: vRequestURI},
	"request_method":                {kind: vMethod},
	"request_args":                  {kind: vArgs},
	"scheme":                        {kind: vScheme},
	"header_accept":                 {kind: vHTTP, name: "Accept"},
	"header_accept_encoding":        {kind: vHTTP, name: "Accept-Encoding"},
	"header_accept_language":        {kind: vHTTP, name: "Accept-Language"},
	"header_cookie":                 {kind: vHTTP, name: "Cookie"},
	"header_origin":                 {kind: vHTTP, name: "Origin"},
	"header_referer":                {kind: vHTTP, name: "Referer"},
	"header_user_agent":             {kind: vHTTP, name: "User-Agent"},
	"network":                       {kind: vRemoteAddr},
	"client_certificate_validation": {kind: vCertValidation},
	"ssl_verification_status":       {kind: vVerificationStatus},
	"ssl_client_fingerprint":        {kind: vClientFingerprint},
	"ssl_client_fingerprint_sha256": {kind: vClientFingerprintSHA256},
	"ssl_client_s_dn":               {kind: vClientSDN},
	"ssl_client_s_dn_parsed":        {kind: vClientSDNParsed},
	"ssl_client_serial":             {kind: vClientSerial},
}

// lookupAppVar resolves the name of an application variable (without ${})
// for a phase. The message explains a failure.
func lookupAppVar(name, phase string) (variable, string) {
	v, ok := variable{}, false
	if k, found := appVars[name]; found {
		v, ok = variable{kind: k}, true
	} else {
		for _, p := range appPrefixes {
			rest, found := strings.CutPrefix(name, p.prefix)
			if !found {
				continue
			}
			if rest == "" {
				return v, fmt.Sprintf("variable \"${%s}\" lacks a name after %q, as in \"${%sx_example}\"", name, p.prefix, p.prefix)
			}
			if !isVarName(rest) {
				return v, fmt.Sprintf("invalid variable name \"${%s}\": use letters, digits and _", name)
			}
			v, ok = variable{kind: p.kind, name: rest}, true
			if p.kind == vHTTP || p.kind == vSentHTTP || p.kind == vUpstreamHTTP {
				v.name = headerKey(rest)
			}
			break
		}
	}
	if !ok {
		msg := fmt.Sprintf("unknown variable \"${%s}\"", name)
		if best := diag.Closest(name, appCandidates(name)); best != "" {
			msg += fmt.Sprintf("; did you mean \"${%s}\"?", best)
		}
		return v, msg
	}
	if v.responseOnly() && phase != manifest.PhaseResponse {
		return variable{}, fmt.Sprintf("variable \"${%s}\" is only available in the response phase", name)
	}
	return v, ""
}

// appCandidates lists the names a misspelled application variable may have
// meant: the fixed names and the prefixed ones with the same suffix.
func appCandidates(name string) []string {
	out := make([]string, 0, len(appVars)+len(appPrefixes))
	for n := range appVars {
		out = append(out, n)
	}
	if _, rest, ok := strings.Cut(name, "_"); ok && rest != "" {
		for _, p := range appPrefixes {
			out = append(out, p.prefix+rest)
			// "sent_http_x" misspelled keeps two words before the suffix.
			if _, rest2, ok := strings.Cut(rest, "_"); ok && rest2 != "" {
				out = append(out, p.prefix+rest2)
			}
		}
	}
	return out
}

// lookupFirewallVar resolves a firewall variable, written bare or as ${name}.
func lookupFirewallVar(spelled string) (variable, string) {
	name := spelled
	if inner, ok := strings.CutPrefix(spelled, "${"); ok {
		inner, ok = strings.CutSuffix(inner, "}")
		if !ok {
			return variable{}, fmt.Sprintf("unterminated \"${\" in variable %q", spelled)
		}
		name = inner
	}
	if v, ok := firewallVars[name]; ok {
		return v, ""
	}
	msg := fmt.Sprintf("unknown firewall variable %q", spelled)
	if _, appMsg := lookupAppVar(name, manifest.PhaseResponse); appMsg == "" {
		return variable{}, msg + "; it is an application variable, which the firewall does not have"
	}
	names := make([]string, 0, len(firewallVars))
	for n := range firewallVars {
		names = append(names, n)
	}
	if best := diag.Closest(name, names); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return variable{}, msg
}

func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// headerKey turns the suffix of ${http_x_client_id} into "X-Client-Id".
func headerKey(suffix string) string {
	return canonicalHeaderKey(strings.ReplaceAll(suffix, "_", "-"))
}

// Request is what the rules engine evaluates: one HTTP request with the facts
// of its connection, as plain values. The caller builds one per request
// (pkg/edge from its *http.Request, without copying: the strings and the
// header map are shared) and evaluates it from one goroutine at a time:
// evaluation caches lookups in it.
type Request struct {
	// Method is the request method; request_method.
	Method string
	// Target is the request target as the client sent it ("/a/b?x=1"; an
	// absolute form or "*" as sent, not normalised); request_uri and
	// request_target_raw.
	Target string
	// Path is the target's path, normalised (NormalizePath: dot segments
	// removed, slashes merged) and decoded, without the query; uri and the
	// firewall's request_uri.
	Path string
	// Query is the target's raw query, without "?"; args, arg_<name> and the
	// firewall's request_args.
	Query string
	// Proto is the protocol as the request line spells it ("HTTP/1.1",
	// "HTTP/2.0"); the last word of request.
	Proto string
	// Header holds the request's headers by canonical key, as net/http
	// keeps them; http_<header>, cookie_<name> and the firewall's header_*
	// variables. An http.Header converts to it without a copy.
	Header HeaderMap
	// Host is the request's host, lowercase, without port or trailing dot;
	// it is the value of host.
	Host string
	// Scheme is "https" or "http"; empty means "https" when Conn carries TLS
	// facts (a Protocol) and "http" otherwise.
	Scheme string
	// Conn holds the facts of the connection the request arrived on; nil is
	// a connection without TLS facts or client certificate.
	Conn *Conn
	// Now is when the request arrived, for ssl_client_v_remain (zero means
	// time.Now()).
	Now time.Time

	// memo caches the values of the variables during one evaluation, by
	// the slot that compilation gave each variable of a firewall or
	// application; memoSet flags the valid slots. Each Evaluate resets it
	// (slots mean different variables in a firewall and an application): a
	// Request is not for concurrent evaluation.
	memoSet uint32
	memo    [maxMemo]memoValue
	// condKnown and condTrue cache the results of shared comparisons.
	condKnown, condTrue uint64
}

// maxMemo is the number of memoized variables per firewall or application
// phase; it is the width of Request.memoSet.
const maxMemo = 32

// assignSlots gives the variables that one evaluation may read more than
// once (in the criteria of its rules, the templates of their behaviors or
// its index) a slot in the request memo, the most read first, while slots
// last. The others are resolved where they are read: a memo costs more than
// it saves for them, and for host, a field of the Request.
func assignSlots(all []criteria, tmpls []*Template, ix *ruleIndex) {
	var vars []*variable
	for _, cr := range all {
		for i := range cr {
			vars = append(vars, &cr[i].x.v)
		}
	}
	for _, t := range tmpls {
		for i := range t.segs {
			if t.segs[i].isVar {
				vars = append(vars, &t.segs[i].v)
			}
		}
	}
	if ix != nil {
		for i := range ix.vars {
			vars = append(vars, &ix.vars[i].v)
		}
	}
	uses := map[varKey]int{}
	var order []varKey
	for _, v := range vars {
		k := varKey{v.kind, v.name}
		if uses[k] == 0 && v.kind != vHost {
			order = append(order, k)
		}
		uses[k]++
	}
	slices.SortStableFunc(order, func(a, b varKey) int { return uses[b] - uses[a] })
	slots := map[varKey]uint8{}
	for _, k := range order {
		if uses[k] < 2 || len(slots) == maxMemo {
			break
		}
		slots[k] = uint8(len(slots) + 1)
	}
	for _, v := range vars {
		v.slot = slots[varKey{v.kind, v.name}]
	}
	for _, cr := range all {
		for i := range cr {
			cr[i].slot = cr[i].x.v.slot
		}
	}
}

type memoValue struct {
	s  string
	ok bool
}

// resetMemo starts an evaluation.
func (r *Request) resetMemo() { r.memoSet, r.condKnown, r.condTrue = 0, 0, 0 }

// Conn holds the facts of one client connection, computed once by NewConn
// when its handshake completes and shared, read-only, by every request on it.
type Conn struct {
	// Remote is the client's address; remote_addr and the firewall's network.
	Remote netip.AddrPort
	// Local is the address the connection was accepted on; server_addr.
	Local netip.AddrPort
	// ServerName is the SNI sent by the client; ssl_server_name.
	ServerName string
	// Protocol is the TLS version in OpenSSL spelling ("TLSv1.3"); ssl_protocol.
	Protocol string
	// Cipher is the cipher suite's name; ssl_cipher.
	Cipher string
	// Client is the client certificate and its verification; nil when none
	// was requested, which reads as ssl_client_verify NONE.
	Client *ClientCert

	remoteAddr, remotePort, serverAddr, serverPort string
}

// TLS holds the TLS facts of a connection, in the spelling of the variables
// that read them; the caller that completed the handshake fills it in.
type TLS struct {
	// ServerName is the SNI sent by the client; ssl_server_name.
	ServerName string
	// Protocol is the TLS version in OpenSSL spelling ("TLSv1.3"); ssl_protocol.
	Protocol string
	// Cipher is the cipher suite's name; ssl_cipher.
	Cipher string
}

// NewConn returns the facts of a connection, with its address strings
// formatted once. tls is nil for a connection without TLS.
func NewConn(remote, local netip.AddrPort, tls *TLS, client *ClientCert) *Conn {
	c := &Conn{Remote: remote, Local: local, Client: client}
	if tls != nil {
		c.ServerName = tls.ServerName
		c.Protocol = tls.Protocol
		c.Cipher = tls.Cipher
	}
	if remote.IsValid() {
		c.remoteAddr = remote.Addr().Unmap().String()
		c.remotePort = strconv.Itoa(int(remote.Port()))
	}
	if local.IsValid() {
		c.serverAddr = local.Addr().Unmap().String()
		c.serverPort = strconv.Itoa(int(local.Port()))
	}
	return c
}

// ClientCert holds the client-certificate variables of a connection,
// formatted once by the caller that verified it (pkg/edge, with pkg/pki's
// formatters) and shared, read-only, by every request on the connection
// (pkg/edge also shares one among the connections that present the same
// certificate with the same verification results).
// Values are raw; the engine makes them header-safe when it places them in
// a header. A ClientCert without a certificate has only Verify (NONE) and
// Status (MISSING_CLIENT_CERTIFICATE).
type ClientCert struct {
	// Verify is ssl_client_verify: SUCCESS, FAILED:<reason> or NONE.
	Verify string
	// Status is the firewall's ssl_verification_status: SUCCESS,
	// CERTIFICATE_VERIFICATION_ERROR or MISSING_CLIENT_CERTIFICATE.
	Status string

	Fingerprint       string    // ssl_client_fingerprint (SHA-1, lowercase hex)
	FingerprintSHA256 string    // ssl_client_fingerprint_sha256
	SubjectDN         string    // ssl_client_s_dn, slash form
	IssuerDN          string    // ssl_client_i_dn, slash form
	SubjectRFC2253    string    // ssl_client_s_dn_rfc2253
	SubjectCN         string    // ssl_client_s_dn_parsed
	Serial            string    // ssl_client_serial, "01:AB:CD"
	NotBefore         string    // ssl_client_v_start, YYYYMMDDHHmmSS UTC
	NotAfter          string    // ssl_client_v_end, YYYYMMDDHHmmSS UTC
	Expiry            time.Time // for ssl_client_v_remain, computed per request
	SANDNS            string    // ssl_client_san_dns, comma separated
	SANURI            string    // ssl_client_san_uri, comma separated
	IssuerRFC2253     string    // ssl_client_i_dn_rfc2253
	ThumbprintS256    string    // ssl_client_cert_thumbprint_s256 (RFC 8705 x5t#S256)

	// BuildPEM, when set, builds one of the certificate's PEM forms (see
	// PEM). It must not call PEM.
	BuildPEM func(c *ClientCert, form PEMForm) string
	pemMu    sync.Mutex
	pems     [numPEMForms]atomic.Pointer[string]
}

// PEMForm is one of the PEM forms of a client certificate, its largest
// values (a kilobyte or more each). Each is built on its first read and
// kept for the connection's next requests until the connection goes idle
// (ReleasePEMs), as nginx builds its own per request: an application
// that forwards none of them holds none, and an idle connection holds
// none either.
type PEMForm uint8

const (
	// PEMEscaped is ssl_client_escaped_cert (and ssl_client_cert): the
	// PEM, percent-encoded.
	PEMEscaped PEMForm = iota
	// PEMRaw is ssl_client_raw_cert: the PEM on one line.
	PEMRaw
	// PEMXFCC is ssl_client_xfcc: Envoy's x-forwarded-client-cert element.
	PEMXFCC
	numPEMForms
)

// PEM returns the certificate's form f, building it on its first read
// since the connection started or last went idle: once, however many
// streams of the connection read it at once. Without BuildPEM it is "".
func (c *ClientCert) PEM(f PEMForm) string {
	if p := c.pems[f].Load(); p != nil {
		return *p
	}
	if c.BuildPEM == nil {
		return ""
	}
	c.pemMu.Lock()
	defer c.pemMu.Unlock()
	if p := c.pems[f].Load(); p != nil {
		return *p
	}
	s := c.BuildPEM(c, f)
	c.pems[f].Store(&s)
	return s
}

// ReleasePEMs forgets the PEM forms built so far; the next read of one
// builds it again. A request that read one keeps its value, so it may be
// called at any time: the servers call it when a connection goes idle
// (the next request of another connection sharing c builds it again).
func (c *ClientCert) ReleasePEMs() {
	for i := range c.pems {
		c.pems[i].Store(nil)
	}
}

// ResponseView is what the response-phase variables read.
type ResponseView struct {
	// Status is the status sent to the client; status.
	Status int
	// Header holds the headers sent to the client; sent_http_<header>.
	Header HeaderMap
	// UpstreamStatus is the origin's status; upstream_status.
	UpstreamStatus int
	// UpstreamHeader holds the origin's headers; upstream_http_<header>.
	UpstreamHeader HeaderMap
}

var (
	noConn   Conn
	noClient = ClientCert{Verify: VerifyNone, Status: StatusMissingCertificate}
)

// statusText holds "100".."599" so that status variables do not allocate.
var statusText = func() []string {
	s := make([]string, 600)
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusString(code int) string {
	if code >= 100 && code < len(statusText) {
		return statusText[code]
	}
	if code == 0 {
		return ""
	}
	return strconv.Itoa(code)
}

func (r *Request) conn() *Conn {
	if r.Conn == nil {
		return &noConn
	}
	return r.Conn
}

func (r *Request) client() *ClientCert {
	if r.Conn == nil || r.Conn.Client == nil {
		return &noClient
	}
	return r.Conn.Client
}

func (r *Request) scheme() string {
	if r.Scheme != "" {
		return r.Scheme
	}
	if r.Conn != nil && r.Conn.Protocol != "" {
		return "https"
	}
	return "http"
}

// value returns the value of v for r (and resp in the response phase) and
// whether it is present: a header that was sent, or a non-empty value.
func (r *Request) value(v *variable, resp *ResponseView) (string, bool) {
	if v.slot == 0 {
		return r.resolve(v, resp)
	}
	i := (v.slot - 1) & (maxMemo - 1)
	bit := uint32(1) << i
	m := &r.memo[i]
	if r.memoSet&bit != 0 {
		return m.s, m.ok
	}
	s, ok := r.resolve(v, resp)
	*m = memoValue{s, ok}
	r.memoSet |= bit
	return s, ok
}

// resolve computes the value of v.
func (r *Request) resolve(v *variable, resp *ResponseView) (string, bool) {
	switch {
	case v.kind >= vStatus:
		return responseValue(v, resp)
	case v.kind >= vClientVerify:
		return r.clientValue(v)
	case v.kind >= vRemoteAddr && v.kind != vRequest:
		return r.connValue(v)
	}
	return r.requestValue(v)
}

// requestValue resolves a variable of the client's request.
func (r *Request) requestValue(v *variable) (string, bool) {
	var s string
	switch v.kind {
	case vHost:
		s = r.Host
	case vURI:
		s = r.Path
	case vRequestURI:
		s = r.Target
	case vMethod:
		s = r.Method
	case vScheme:
		s = r.scheme()
	case vArgs:
		s = r.Query
	case vArg:
		s = queryArg(r.Query, v.name)
	case vHTTP:
		return headerValue(r.Header, v.name)
	case vCookie:
		s = cookieValue(r.Header, v.name)
	case vRequest:
		if r.Method != "" {
			s = r.Method + " " + r.Target + " " + r.Proto
		}
	}
	return s, s != ""
}

// connValue resolves a variable of the connection: addresses and TLS.
func (r *Request) connValue(v *variable) (string, bool) {
	var s string
	switch v.kind {
	case vRemoteAddr:
		s = r.conn().remoteAddr
	case vRemotePort:
		s = r.conn().remotePort
	case vServerAddr:
		s = r.conn().serverAddr
	case vServerPort:
		s = r.conn().serverPort
	case vSSLServerName:
		s = r.conn().ServerName
	case vSSLProtocol:
		s = r.conn().Protocol
	case vSSLCipher:
		s = r.conn().Cipher
	}
	return s, s != ""
}

// clientValue resolves a variable of the client certificate and its
// verification.
func (r *Request) clientValue(v *variable) (string, bool) {
	var s string
	switch v.kind {
	case vClientVerify:
		s = r.client().Verify
	case vClientEscapedCert:
		s = r.client().PEM(PEMEscaped)
	case vClientFingerprint:
		s = r.client().Fingerprint
	case vClientFingerprintSHA256:
		s = r.client().FingerprintSHA256
	case vClientSDN:
		s = r.client().SubjectDN
	case vClientIDN:
		s = r.client().IssuerDN
	case vClientSDNRFC2253:
		s = r.client().SubjectRFC2253
	case vClientSDNParsed:
		s = r.client().SubjectCN
	case vClientSerial:
		s = r.client().Serial
	case vClientVStart:
		s = r.client().NotBefore
	case vClientVEnd:
		s = r.client().NotAfter
	case vClientVRemain:
		if c := r.client(); !c.Expiry.IsZero() {
			now := r.Now
			if now.IsZero() {
				now = time.Now()
			}
			s = strconv.Itoa(daysRemaining(c.Expiry, now))
		}
	case vClientSANDNS:
		s = r.client().SANDNS
	case vClientSANURI:
		s = r.client().SANURI
	case vClientIDNRFC2253:
		s = r.client().IssuerRFC2253
	case vClientRawCert:
		s = r.client().PEM(PEMRaw)
	case vClientThumbprintS256:
		s = r.client().ThumbprintS256
	case vClientXFCC:
		s = r.client().PEM(PEMXFCC)
	case vCertValidation:
		if r.client().Status == StatusSuccess {
			s = "true"
		} else {
			s = "false"
		}
	case vVerificationStatus:
		s = r.client().Status
	}
	return s, s != ""
}

// responseValue resolves a response-phase variable; resp is nil in the
// request phase.
func responseValue(v *variable, resp *ResponseView) (string, bool) {
	var s string
	switch v.kind {
	case vStatus:
		if resp != nil {
			s = statusString(resp.Status)
		}
	case vSentHTTP:
		if resp != nil {
			return headerValue(resp.Header, v.name)
		}
	case vUpstreamStatus:
		if resp != nil {
			s = statusString(resp.UpstreamStatus)
		}
	case vUpstreamHTTP:
		if resp != nil {
			return headerValue(resp.UpstreamHeader, v.name)
		}
	}
	return s, s != ""
}

// daysRemaining is the value of ssl_client_v_remain: the whole days from
// now until expiry, as nginx's $ssl_client_v_remain counts them — the
// seconds left divided by 86400, rounded down, and 0 in the certificate's
// last day and once it has expired (never negative).
func daysRemaining(expiry, now time.Time) int {
	secs := expiry.Unix() - now.Unix()
	if secs < 86400 {
		return 0
	}
	return int(secs / 86400)
}

// headerValue returns the values of a header joined by ", " and whether the
// header is present. One value, the common case, does not allocate.
func headerValue(h HeaderMap, key string) (string, bool) {
	vs, ok := h[key]
	switch {
	case !ok:
		return "", false
	case len(vs) == 1:
		return vs[0], true
	case len(vs) == 0:
		return "", true
	}
	sep := ", "
	if key == "Cookie" {
		sep = "; "
	}
	return strings.Join(vs, sep), true
}

// queryArg returns the raw value of the first query parameter named name
// (compared case-insensitively, as nginx's $arg_name), without allocating.
func queryArg(query, name string) string {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, val, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, name) {
			return val
		}
	}
	return ""
}

// cookieValue returns the value of the first cookie named name, without
// allocating.
func cookieValue(h HeaderMap, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " \t")
			k, val, ok := strings.Cut(part, "=")
			if ok && strings.TrimRight(k, " \t") == name {
				val = strings.TrimSpace(val)
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = val[1 : len(val)-1]
				}
				return val
			}
		}
	}
	return ""
}
