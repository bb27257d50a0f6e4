package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/edgectl/edgectl/pkg/manifest"

	"github.com/edgectl/edgectl/pkg/proxy"
	"github.com/edgectl/edgectl/pkg/rules"
)

// appRuntime is a compiled application: its rules and its origin client.
type appRuntime struct {
	name       string
	app        *rules.Application
	hostHeader *rules.Template
	origin     *proxy.Origin
	// retryAfter is the Retry-After of a 503 for a full queue: the queue
	// timeout in whole seconds, at least 1.
	retryAfter string
	// underscores accepts header names with '_' (but never the protected
	// families, see dropUnderscoreHeaders).
	underscores bool
	// slashes and rawOriginPath are the application's path policy: what
	// NormalizePath does with escaped slashes, and whether the origin
	// receives the client's path as sent rather than normalised.
	slashes       rules.EscapedSlashes
	rawOriginPath bool
}

type fieldErrs struct{ errs []rules.FieldError }

func (e *fieldErrs) Error() string { return fmt.Sprint(e.errs) }

func compileApp(name string, spec *manifest.ApplicationSpec, lists map[string]*rules.NetworkList) (*appRuntime, error) {
	app, errs := rules.CompileApplication(spec, lists)
	hostHeader := manifest.DefaultHostHeader
	if spec.Origin.HostHeader != "" {
		hostHeader = spec.Origin.HostHeader
	}
	tmpl, terrs := rules.CompileTemplate("spec.origin.hostHeader", hostHeader, manifest.PhaseRequest)
	errs = append(errs, terrs...)
	if rules.HasErrors(errs) {
		return nil, &fieldErrs{errs: errs}
	}
	u, err := url.Parse(spec.Origin.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid origin URL %q", spec.Origin.URL)
	}
	connect, err := durationOr(spec.Origin.ConnectTimeout, manifest.DefaultConnectTimeout)
	if err != nil {
		return nil, err
	}
	respTimeout, err := durationOr(spec.Origin.ResponseTimeout, manifest.DefaultResponseTimeout)
	if err != nil {
		return nil, err
	}
	queueTimeout, err := durationOr(spec.Origin.QueueTimeout, manifest.Duration(connect.String()))
	if err != nil {
		return nil, err
	}
	lim, err := compileLimits(spec)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if u.Scheme == "https" {
		if tc, err = originTLS(u, spec.Origin.TLS); err != nil {
			return nil, err
		}
	}
	paths := manifest.PathPolicy{EscapedSlashes: manifest.EscapedSlashesUnescape, Origin: manifest.OriginPathNormalized}
	if p := spec.Paths; p != nil {
		paths.EscapedSlashes = cmpOr(p.EscapedSlashes, paths.EscapedSlashes)
		paths.Origin = cmpOr(p.Origin, paths.Origin)
	}
	switch paths.EscapedSlashes {
	case manifest.EscapedSlashesUnescape, manifest.EscapedSlashesKeep, manifest.EscapedSlashesReject:
	default:
		return nil, fmt.Errorf("invalid paths.escapedSlashes %q", paths.EscapedSlashes)
	}
	switch paths.Origin {
	case manifest.OriginPathNormalized, manifest.OriginPathOriginal:
	default:
		return nil, fmt.Errorf("invalid paths.origin %q", paths.Origin)
	}
	return &appRuntime{
		name: name, app: app, hostHeader: tmpl,
		origin: proxy.New(proxy.Config{
			URL: u, TLS: tc, ConnectTimeout: connect, ResponseTimeout: respTimeout,
			StripTrailers: func(h http.Header) { app.StripHeaders(rules.HeaderMap(h)) },
			MaxConns:      lim.maxConns, MaxQueue: lim.maxQueue, QueueTimeout: queueTimeout,
			MaxBodySize: lim.maxBody, BufferSize: lim.buffer,
		}),
		retryAfter:    strconv.Itoa(max(1, int((queueTimeout+time.Second-1)/time.Second))),
		underscores:   spec.UnderscoresInHeaders,
		slashes:       slashPolicies[paths.EscapedSlashes],
		rawOriginPath: paths.Origin == manifest.OriginPathOriginal,
	}, nil
}

var slashPolicies = map[string]rules.EscapedSlashes{
	manifest.EscapedSlashesUnescape: rules.UnescapeSlashes,
	manifest.EscapedSlashesKeep:     rules.KeepSlashes,
	manifest.EscapedSlashesReject:   rules.RejectSlashes,
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// limits are an application's bounds, defaults applied.
type limits struct {
	maxConns, maxQueue int
	maxBody            int64
	buffer             int
}

func compileLimits(spec *manifest.ApplicationSpec) (limits, error) {
	l := limits{maxConns: manifest.DefaultMaxConnections, maxQueue: manifest.DefaultMaxQueue}
	if n := spec.Origin.MaxConnections; n != nil {
		if *n < 1 {
			return l, fmt.Errorf("invalid origin.maxConnections %d", *n)
		}
		l.maxConns = *n
	}
	if n := spec.Origin.MaxQueue; n != nil {
		if *n < 0 {
			return l, fmt.Errorf("invalid origin.maxQueue %d", *n)
		}
		l.maxQueue = *n
	}
	size := spec.MaxRequestBodySize
	if size == "" {
		size = manifest.DefaultMaxRequestBodySize
	}
	var err error
	if l.maxBody, err = size.Parse(); err != nil {
		return l, fmt.Errorf("invalid maxRequestBodySize: %w", err)
	}
	b := spec.RequestBuffering
	if b != nil && b.Enabled != nil && !*b.Enabled {
		return l, nil
	}
	size = manifest.DefaultRequestBufferingSize
	if b != nil && b.Size != "" {
		size = b.Size
	}
	buf, err := size.Parse()
	if err != nil || buf > manifest.MaxRequestBufferingSize {
		return l, fmt.Errorf("invalid requestBuffering.size %q (at most %d bytes)", size, manifest.MaxRequestBufferingSize)
	}
	// A buffer larger than the body limit is never filled past the limit
	// (and one byte, to see it crossed).
	l.buffer = int(buf)
	return l, nil
}

// originTLS is the TLS client configuration of an https origin: its own CA
// bundle (else the system roots) and server name (else the URL's host).
func originTLS(u *url.URL, t *manifest.OriginTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if t == nil {
		return tc, nil
	}
	if t.ServerName != "" {
		tc.ServerName = t.ServerName
	}
	tc.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(t.CA)) {
			return nil, errors.New("origin CA bundle holds no certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func durationOr(d, def manifest.Duration) (time.Duration, error) {
	if d == "" {
		d = def
	}
	v, err := d.Parse()
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("invalid duration %q", d)
	}
	return v, nil
}

func (a *appRuntime) close() { a.origin.Close() }

// forward proxies r to the application's origin over HTTP/1.1 and relays
// the answer, all on the handler's goroutine: no goroutine, channel or
// context per request. A client that goes away is noticed when writing to
// it fails; until then the response timeout bounds the wait for the
// origin.
//
// Protocol upgrades (WebSocket and the like) and CONNECT are answered 501
// Not Implemented: the edge does not promise them, and an upgraded
// connection would escape the response phase and the origin timeouts.
func (a *appRuntime) forward(w *statusWriter, r *http.Request, st *reqState) {
	if r.Method == http.MethodConnect || isUpgrade(r) {
		st.rec.Error = "protocol upgrade or CONNECT requested"
		respond(w, http.StatusNotImplemented, "not implemented: the edge does not proxy protocol upgrades or CONNECT\n")
		return
	}
	st.out = proxy.Outbound{
		Host:       a.hostHeader.Render(&st.req, nil),
		Path:       st.acts.Path,
		NormalPath: st.normalPath,
		Filter:     st.acts.Filter,
		Add:        (*addedHeaders)(&st.acts.Add),
	}
	st.sentAt = time.Now()
	x, err := a.origin.RoundTrip(r.Context(), r, &st.out)
	if err != nil {
		a.proxyError(w, r, st, err)
		return
	}
	keep := false
	defer func() { x.Release(keep) }()
	applyResponsePhase(st, x.Response)
	keep, err = x.Relay(w)
	if err != nil {
		st.rec.Error = err.Error()
		panic(http.ErrAbortHandler)
	}
}

// addedHeaders passes the headers of the request phase to the origin
// client without a copy.
type addedHeaders []rules.Header

func (h *addedHeaders) Len() int { return len(*h) }

func (h *addedHeaders) Field(i int) (name, value string) { return (*h)[i].Name, (*h)[i].Value }

// applyResponsePhase runs the application's response phase on the
// origin's response and records the origin's latency and status.
func applyResponsePhase(st *reqState, resp *http.Response) {
	st.rec.Upstream = time.Since(st.sentAt)
	st.rec.UpstreamStatus = resp.StatusCode
	st.respView = rules.ResponseView{Status: resp.StatusCode, Header: rules.HeaderMap(resp.Header), UpstreamStatus: resp.StatusCode, UpstreamHeader: rules.HeaderMap(resp.Header)}
	st.domain.app.app.EvaluateResponse(&st.req, &st.respView, &st.resp)
	for _, name := range st.resp.Filter {
		resp.Header.Del(name)
	}
	for _, hd := range st.resp.Add {
		resp.Header[hd.Name] = append(resp.Header[hd.Name], hd.Value)
	}
}

// isUpgrade reports whether r asks to switch protocols.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade")
}

// proxyError answers 504 when the origin timed out and 502 otherwise, with a
// short body; the cause goes to the access log, never to the client. A
// request body the client failed to send is the client's error (400).
//
// The limits answer: 413 Content Too Large for a body over the maximum
// size (and the connection is closed: the rest of the body is not read),
// 503 Service Unavailable with Retry-After when the origin connections are
// all busy and the queue is full or its wait over; each is recorded in
// Record.Limit.
func (a *appRuntime) proxyError(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	status, body := http.StatusBadGateway, "bad gateway: the origin is unavailable\n"
	var ne net.Error
	var cbe *proxy.ClientBodyError
	switch {
	case errors.Is(err, context.Canceled), r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		status = 499
	case errors.Is(err, proxy.ErrBodyTooLarge):
		st.rec.Limit = LimitBodySize
		w.Header().Set("Connection", "close")
		status, body = http.StatusRequestEntityTooLarge, "content too large: the request body is over the application's maximum size\n"
	case errors.Is(err, proxy.ErrQueueFull), errors.Is(err, proxy.ErrQueueTimeout):
		st.rec.Limit = LimitOriginQueueFull
		if errors.Is(err, proxy.ErrQueueTimeout) {
			st.rec.Limit = LimitOriginQueueTimeout
		}
		w.Header().Set("Retry-After", a.retryAfter)
		status, body = http.StatusServiceUnavailable, "service unavailable: the origin is busy; retry later\n"
	case errors.As(err, &cbe):
		status, body = http.StatusBadRequest, "bad request: the request body could not be read\n"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		status, body = http.StatusGatewayTimeout, "gateway timeout: the origin did not answer in time\n"
	case errors.Is(err, syscall.ECONNREFUSED):
		body = "bad gateway: the origin refused the connection\n"
	}
	st.rec.Error = err.Error()
	if status == 499 {
		return
	}
	respond(w, status, body)
}
