package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// appRuntime is a compiled application: its rules and its reverse proxy.
type appRuntime struct {
	name       string
	app        *Application
	origin     *url.URL
	hostHeader *Template
	transport  *http.Transport
	proxy      *httputil.ReverseProxy
}

type fieldErrs struct{ errs []FieldError }

func (e *fieldErrs) Error() string { return fmt.Sprint(e.errs) }

// Upstream connection pool sizes: enough idle connections that a busy edge
// never re-dials the origin for every request.
const (
	maxIdleConns        = 1024
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 90 * time.Second
)

func compileApp(name string, spec *manifest.ApplicationSpec, lists map[string]*NetworkList, rt *Runtime) (*appRuntime, error) {
	app, errs := CompileApplication(spec, lists)
	hostHeader := manifest.DefaultHostHeader
	if spec.Origin.HostHeader != "" {
		hostHeader = spec.Origin.HostHeader
	}
	tmpl, terrs := CompileTemplate("spec.origin.hostHeader", hostHeader, manifest.PhaseRequest)
	errs = append(errs, terrs...)
	if hasErrors(errs) {
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
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: respTimeout,
		ExpectContinueTimeout: time.Second,
		// The edge forwards what the client sent; it never asks for gzip itself.
		DisableCompression: true,
	}
	if u.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if t := spec.Origin.TLS; t != nil {
			tc.ServerName = t.ServerName
			tc.InsecureSkipVerify = t.InsecureSkipVerify
			if t.CA != "" {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM([]byte(t.CA)) {
					return nil, errors.New("origin CA bundle holds no certificate")
				}
				tc.RootCAs = pool
			}
		}
		tr.TLSClientConfig = tc
	}
	a := &appRuntime{name: name, app: app, origin: u, hostHeader: tmpl, transport: tr}
	a.proxy = &httputil.ReverseProxy{
		Rewrite:        a.rewrite,
		Transport:      tr,
		ModifyResponse: rt.modifyResponse,
		ErrorHandler:   rt.proxyError,
		// FlushInterval 0: ReverseProxy flushes streamed responses (unknown
		// length, server-sent events) at once, and writes a response of known
		// length without a flush (and its extra TLS record and syscall) per
		// write.
		FlushInterval: 0,
	}
	return a, nil
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

func (a *appRuntime) close() { a.transport.CloseIdleConnections() }

// rewrite builds the origin request. ReverseProxy has already removed
// hop-by-hop headers, including those named in Connection, so the headers
// set here cannot be stripped by the client.
func (a *appRuntime) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(reqStateKey{}).(*reqState)
	pr.SetURL(a.origin)
	if st.acts.Path != "" {
		path, query, _ := strings.Cut(st.acts.Path, "?")
		pr.Out.URL.Path = singleJoin(a.origin.Path, path)
		pr.Out.URL.RawPath = ""
		pr.Out.URL.RawQuery = query
	}
	pr.SetXForwarded()
	pr.Out.Host = a.hostHeader.Render(&st.req, nil)
	h := pr.Out.Header
	for _, name := range st.acts.Filter {
		h.Del(name)
	}
	for _, hd := range st.acts.Add {
		h[hd.Name] = append(h[hd.Name], hd.Value)
	}
	st.sentAt = time.Now()
}

func singleJoin(base, p string) string {
	if base == "" || base == "/" {
		if !strings.HasPrefix(p, "/") {
			return "/" + p
		}
		return p
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(p, "/")
}

// modifyResponse runs the application's response phase on the origin's response.
func (rt *Runtime) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(reqStateKey{}).(*reqState)
	st.rec.Upstream = time.Since(st.sentAt)
	st.rec.UpstreamStatus = resp.StatusCode
	view := ResponseView{Status: resp.StatusCode, Header: resp.Header, UpstreamStatus: resp.StatusCode, UpstreamHeader: resp.Header}
	st.domain.app.app.EvaluateResponse(&st.req, &view, &st.resp)
	for _, name := range st.resp.Filter {
		resp.Header.Del(name)
	}
	for _, hd := range st.resp.Add {
		resp.Header[hd.Name] = append(resp.Header[hd.Name], hd.Value)
	}
	return nil
}

// proxyError answers 504 when the origin timed out and 502 otherwise, with a
// short body; the cause goes to the access log, never to the client.
func (rt *Runtime) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := http.StatusBadGateway, "bad gateway: the origin is unavailable\n"
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		status = 499
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		status, body = http.StatusGatewayTimeout, "gateway timeout: the origin did not answer in time\n"
	case errors.Is(err, syscall.ECONNREFUSED):
		body = "bad gateway: the origin refused the connection\n"
	}
	if st, ok := r.Context().Value(reqStateKey{}).(*reqState); ok {
		st.rec.Error = err.Error()
	}
	if status == 499 {
		return
	}
	respond(w, status, body)
}
