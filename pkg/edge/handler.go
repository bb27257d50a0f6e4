package edge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/edgectl/edgectl/pkg/pki"

	"github.com/edgectl/edgectl/pkg/proxy"
	"github.com/edgectl/edgectl/pkg/rules"
)

// Observer receives what happens on the request path, for metrics and the
// access log. Implementations must be safe for concurrent use and cheap.
type Observer interface {
	// Request is called once per request after the response is written.
	Request(rec *Record)
	// Verified is called once per connection and domain with the client
	// certificate's verification result (ssl_client_verify).
	Verified(domain, verify string)
}

// Record describes one request, for the access log and metrics. It never
// holds certificate or key material; only the client certificate's
// fingerprint.
type Record struct {
	Domain, Host, Method, Path string
	// Status is the response status; 0 when a firewall drop closed the
	// connection without a response.
	Status int
	Bytes  int64
	// Start is when the request's handling began (the access log's time),
	// Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Verify is ssl_client_verify.
	Verify string
	// Fingerprint is the SHA-256 fingerprint of the client certificate.
	Fingerprint string
	// FirewallRule and FirewallAction name the firewall decision, if a rule matched.
	FirewallRule, FirewallAction string
	// Upstream is the origin's latency, zero when the origin was not reached.
	Upstream       time.Duration
	UpstreamStatus int
	Remote         string
	// Error is why the origin could not answer, for the log.
	Error string
	// Limit names the limit or policy that refused the request (one of the
	// Limit constants), empty when none did.
	Limit string
}

// The limits and policies that refuse requests, as Record.Limit names them.
const (
	// LimitBodySize: the request body is over maxRequestBodySize (413).
	LimitBodySize = "request_body_size"
	// LimitOriginQueueFull: all origin connections busy, queue full (503).
	LimitOriginQueueFull = "origin_queue_full"
	// LimitOriginQueueTimeout: all origin connections busy for the whole
	// queue timeout (503).
	LimitOriginQueueTimeout = "origin_queue_timeout"
	// LimitEscapedSlash: an encoded slash or backslash in the path under
	// paths.escapedSlashes: reject (400).
	LimitEscapedSlash = "escaped_slash"
)

type nopObserver struct{}

func (nopObserver) Request(*Record)         {}
func (nopObserver) Verified(string, string) {}

func randomSecret() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("edge: no randomness: " + err.Error())
	}
	return b
}

type connKey struct{}

// connInfo is what one client connection computes once and shares between
// its requests: the facts of the connection and its client certificate.
type connInfo struct {
	raw  net.Conn
	mu   sync.Mutex
	conn *rules.Conn
	// policy is the id of the TLS policy the facts were computed under;
	// after a reload that changed the domain's trust, they are recomputed.
	policy [32]byte
}

// ConnContext is the http.Server ConnContext hook that gives each connection
// its own slot for facts computed once.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connInfo{raw: c})
}

// ConnIdle is the servers' hook for a connection gone idle: it forgets the
// PEM forms of the connection's client certificate
// (rules.ClientCert.ReleasePEMs), which its next request builds again if
// its application reads them. An idle connection then holds none, as
// nginx, which builds them per request; the certificate's other variables
// it shares with the connections that present the same certificate
// (sharedClientCerts).
func ConnIdle(ctx context.Context) {
	ci, _ := ctx.Value(connKey{}).(*connInfo)
	if ci == nil {
		return
	}
	ci.mu.Lock()
	c := ci.conn
	ci.mu.Unlock()
	if c != nil && c.Client != nil {
		c.Client.ReleasePEMs()
	}
}

// connFacts returns the facts of r's connection under domain d, computing
// them on the connection's first request (or after d's trust changed).
// ok is false when the connection must not serve d any more: an Enforce
// domain whose new trust store rejects the certificate the connection was
// verified with.
func (rt *Runtime) connFacts(r *http.Request, d *Domain) (c *rules.Conn, ok bool) {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if ci == nil {
		ci = &connInfo{}
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.conn != nil && ci.policy == d.tls.id {
		return ci.conn, true
	}
	reverified := ci.conn != nil
	state := r.TLS
	var client *rules.ClientCert
	switch d.tls.mode {
	case ModeOff:
		client = nil
	default:
		var leaf *x509.Certificate
		if len(state.PeerCertificates) > 0 {
			leaf = state.PeerCertificates[0]
		}
		var verr *pki.VerifyError
		// An Enforce handshake already verified chain, depth and CRLs; a
		// connection that outlived a change of its domain's trust is
		// verified again against the new trust store.
		if d.tls.mode == ModePermissive || reverified {
			verr = d.tls.trust.verify(state.PeerCertificates, rt.now())
			if verr != nil && d.tls.mode == ModeEnforce {
				return nil, false
			}
		}
		client = sharedClientCerts.get(leaf, verr.SSLClientVerify(), verr.Status())
		rt.observer.Verified(d.Name, client.Verify)
	}
	var remote, local netip.AddrPort
	if ci.raw != nil {
		remote = addrPort(ci.raw.RemoteAddr())
		local = addrPort(ci.raw.LocalAddr())
	} else {
		remote, _ = netip.ParseAddrPort(r.RemoteAddr)
	}
	var facts *rules.TLS
	if state != nil {
		t := connTLS(state)
		facts = &t
	}
	ci.conn = rules.NewConn(remote, local, facts, client)
	ci.policy = d.tls.id
	return ci.conn, true
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// reqState is one request's working state, from the handler through the
// origin exchange; it is pooled and reused.
type reqState struct {
	req  rules.Request
	acts rules.RequestActions
	resp rules.ResponseActions
	// respView is the response phase's view, kept here so that it is
	// not allocated per request.
	respView rules.ResponseView
	out      proxy.Outbound
	domain   *Domain
	w        statusWriter
	rec      Record
	// normalPath is the escaped path the origin is sent when normalisation
	// changed the client's, else empty (see normalizePath).
	normalPath string
	// dropped is set when a firewall drop closed the connection.
	dropped bool
	started time.Time
	sentAt  time.Time
}

var reqPool = sync.Pool{New: func() any { return new(reqState) }}

// ServeHTTP runs the edge's request pipeline: Host/SNI agreement (else 421),
// identity-header sanitation, firewall, application request phase, the
// origin, then the response phase.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := reqPool.Get().(*reqState)
	st.started = rt.now()
	st.rec = Record{Method: r.Method, Path: r.URL.Path, Host: r.Host, Remote: r.RemoteAddr, Start: st.started}
	st.w = statusWriter{ResponseWriter: w}
	sw := &st.w
	defer func() {
		st.rec.Status, st.rec.Bytes = sw.status, sw.bytes
		if st.rec.Status == 0 && !st.dropped {
			// Nothing was written: net/http answers 200 with an empty body.
			st.rec.Status = http.StatusOK
		}
		st.rec.Duration = rt.now().Sub(st.started)
		rt.observer.Request(&st.rec)
		// Cleared in place, the actions' reusable slices kept: a
		// composite literal assigned to *st would be built on the stack
		// and copied over the 1.7 KB state, twice the work.
		acts, resp := st.acts, st.resp
		*st = reqState{}
		st.acts, st.resp = acts, resp
		reqPool.Put(st)
	}()
	rt.serve(sw, r, st)
}

func (rt *Runtime) serve(w *statusWriter, r *http.Request, st *reqState) {
	if r.TLS == nil {
		respond(w, http.StatusBadRequest, "edgectl serves HTTPS only\n")
		return
	}
	d := rt.Lookup(r.TLS.ServerName)
	if d == nil {
		// The domain left the configuration since the handshake.
		w.Header().Set("Connection", "close")
		respond(w, http.StatusMisdirectedRequest, "misdirected request: this connection cannot serve "+r.TLS.ServerName+"\n")
		return
	}
	st.rec.Domain = d.Name
	host := NormalizeName(r.Host)
	if rt.lookupNormalized(host) != d {
		// A client must not reach one domain through a connection whose
		// handshake (and client-certificate policy) belongs to another.
		respond(w, http.StatusMisdirectedRequest, "misdirected request: host does not match the TLS server name\n")
		return
	}
	conn, ok := rt.connFacts(r, d)
	if !ok {
		w.Header().Set("Connection", "close")
		respond(w, http.StatusMisdirectedRequest, "misdirected request: the domain's client-certificate policy changed; reconnect\n")
		return
	}
	if conn.Client != nil {
		st.rec.Verify, st.rec.Fingerprint = conn.Client.Verify, conn.Client.FingerprintSHA256
	}
	// Header names with '_' are dropped (nginx's underscores_in_headers
	// off) unless the application accepts them, and the protected
	// families always.
	dropUnderscoreHeaders(r.Header, d.app.underscores)
	// Clients can neither forge nor remove the headers the edge sets.
	d.app.app.StripHeaders(rules.HeaderMap(r.Header))
	if r.RequestURI == "*" && r.Method != http.MethodOptions {
		// The asterisk form is OPTIONS's alone (RFC 9112 §3.2.4, RFC 9113
		// §8.3.1): h1 refuses the rest itself; an HTTP/2 ":path *" with
		// another method is malformed and never reaches the origin.
		respond(w, http.StatusBadRequest, "bad request: the asterisk form is for OPTIONS only\n")
		return
	}
	if !normalizePath(r, d.app, st) {
		respond(w, http.StatusBadRequest, "bad request: the path holds an encoded slash or a backslash, which this application refuses\n")
		return
	}
	requestView(&st.req, r, host, conn, st.started)
	st.domain = d

	if d.firewall != nil {
		dec := d.firewall.Evaluate(&st.req)
		if dec.Action != rules.Allow {
			st.rec.FirewallRule, st.rec.FirewallAction = dec.Rule, dec.Action.String()
		}
		switch dec.Action {
		case rules.Deny:
			respond(w, http.StatusForbidden, "forbidden\n")
			return
		case rules.Drop:
			// Close the connection (or reset the HTTP/2 stream) without a
			// response; the record keeps status 0.
			st.dropped = true
			panic(http.ErrAbortHandler)
		case rules.RateLimited:
			if dec.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(dec.RetryAfter))
			}
			respond(w, http.StatusTooManyRequests, "too many requests\n")
			return
		case rules.Custom:
			w.Header().Set("Content-Type", dec.ContentType)
			respond(w, dec.Status, dec.Body)
			return
		}
	}

	d.app.app.EvaluateRequest(&st.req, &st.acts)
	switch st.acts.Status {
	case 0:
	case http.StatusMovedPermanently, http.StatusFound:
		w.Header().Set("Location", st.acts.Location)
		respond(w, st.acts.Status, "")
		return
	case http.StatusNoContent:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		respond(w, st.acts.Status, http.StatusText(st.acts.Status)+"\n")
		return
	}
	d.app.forward(w, r, st)
}

// normalizePath normalises r's path (rules.NormalizePath) under the
// application's policy: r.URL.Path becomes the normalised, decoded path
// that the rules see, and, unless the application sends the origin the
// path as received, st.normalPath the escaped form the origin is sent
// (when it differs from the client's; the client's escaped path with
// paths.origin: original). The raw request target stays in
// r.RequestURI. It returns false when the policy rejects the path.
func normalizePath(r *http.Request, a *appRuntime, st *reqState) bool {
	raw := r.URL.EscapedPath()
	escaped, decoded, err := rules.NormalizePath(raw, a.slashes)
	if err != nil {
		st.rec.Limit = LimitEscapedSlash
		return false
	}
	if escaped == raw && decoded == r.URL.Path {
		return true
	}
	st.normalPath = escaped
	if a.rawOriginPath {
		st.normalPath = raw
	}
	r.URL.Path, r.URL.RawPath = decoded, ""
	return true
}

func respond(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if body != "" {
		w.Write([]byte(body))
	}
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streamed responses through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController access to the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connTLS returns the TLS facts the rules engine reads of a handshake.
func connTLS(state *tls.ConnectionState) rules.TLS {
	return rules.TLS{
		ServerName: state.ServerName,
		Protocol:   protocolName(state.Version),
		Cipher:     tls.CipherSuiteName(state.CipherSuite),
	}
}

// protocolName spells a TLS version as OpenSSL does, for ssl_protocol.
func protocolName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}
