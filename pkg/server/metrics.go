package server

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/pki"
)

// Metric names, exported on /metrics.
const (
	MetricRequests            = "edgectl_requests_total"
	MetricClientVerifications = "edgectl_client_verifications_total"
	MetricHandshakeErrors     = "edgectl_tls_handshake_errors_total"
	MetricFirewallDecisions   = "edgectl_firewall_decisions_total"
	MetricUpstreamDuration    = "edgectl_upstream_duration_seconds"
	MetricReloads             = "edgectl_reloads_total"
	MetricStateSerial         = "edgectl_state_serial"
	MetricRuntimeDomains      = "edgectl_runtime_domains"
	MetricAccessLogDropped    = "edgectl_access_log_dropped_total"
	MetricStoreConnected      = "edgectl_state_store_connected"
	MetricClientConnections   = "edgectl_client_connections"
	MetricConnectionsRefused  = "edgectl_client_connections_refused_total"
	MetricConnectionsParked   = "edgectl_client_connections_parked"
	MetricHTTP2Timeouts       = "edgectl_http2_timeouts_total"
	MetricHTTP2Errors         = "edgectl_http2_errors_total"
	MetricLimitRefusals       = "edgectl_limit_refusals_total"
)

// metrics holds the server's Prometheus collectors in a registry of its own.
// The request path only looks up cached children and increments them.
type metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	verifications *prometheus.CounterVec
	handshakes    *prometheus.CounterVec
	firewall      *prometheus.CounterVec
	upstream      *prometheus.HistogramVec
	reloads       *prometheus.CounterVec
	serial        prometheus.Gauge
	domains       prometheus.Gauge
	dropped       prometheus.Counter
	connected     prometheus.Gauge
	refused       prometheus.Counter
	h2Timeouts    *prometheus.CounterVec
	h2Errors      *prometheus.CounterVec

	// open counts the edge listener's client connections, from their
	// acceptance to their close.
	open   atomic.Int64
	limits *prometheus.CounterVec
	// parker holds the idle connections (while Serve runs).
	parker atomic.Pointer[park.Parker]

	// Cached children: looking a child up by labels hashes and allocates,
	// so each (domain, code) and each domain's verification results are
	// resolved once.
	reqChildren    sync.Map // requestKey → prometheus.Counter
	verifyChildren sync.Map // domain → *verifyCounters
	upChildren     sync.Map // domain → prometheus.Observer
}

type requestKey struct {
	domain string
	code   int
}

type verifyCounters struct{ success, failed, none prometheus.Counter }

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests, Help: "Requests answered, by domain and HTTP status code (domain is empty when the server name matches no domain).",
	}, []string{"domain", "code"})
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricClientVerifications, Help: "Client-certificate verification results of connections to mTLS domains (SUCCESS, FAILED or NONE), counted once per connection and domain.",
	}, []string{"domain", "result"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricHandshakeErrors, Help: "TLS handshakes that failed, by reason.",
	}, []string{"reason"})
	m.firewall = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricFirewallDecisions, Help: "Firewall rules that matched and ended a request, by domain, rule and action.",
	}, []string{"domain", "rule", "action"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricUpstreamDuration, Help: "Time from sending a request to the origin to its response headers, by domain.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"domain"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricReloads, Help: "Reloads of the state store, by result (success or failure); the startup load is not counted.",
	}, []string{"result"})
	m.serial = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricStateSerial, Help: "Serial of the snapshot being served."})
	m.domains = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricRuntimeDomains, Help: "Domains of the runtime being served."})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricAccessLogDropped, Help: "Access-log lines dropped because the writer could not keep up.",
	})
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricStoreConnected, Help: "1 while the state store answers, 0 while it cannot be reached (a file store is always 1).",
	})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricConnectionsRefused, Help: "Client connections closed at once, before their handshake, because the edge listener held --max-connections.",
	})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricClientConnections, Help: "Client connections the edge listener holds (handshaking, HTTP/1.x and HTTP/2).",
	}, func() float64 { return float64(m.open.Load()) })
	parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricConnectionsParked, Help: "Idle client connections waiting without a goroutine of their own (HTTP/1.x after 250 ms without a request, HTTP/2 after 250 ms without a stream; Linux), among edgectl_client_connections.",
	}, func() float64 {
		if p := m.parker.Load(); p != nil {
			return float64(p.Len())
		}
		return 0
	})
	m.h2Timeouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricHTTP2Timeouts, Help: "HTTP/2 timeouts: connections closed for want of a first request (header) or with no stream open (idle), streams reset for a stalled request body (body) or response write (write).",
	}, []string{"timeout"})
	m.h2Errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricHTTP2Errors, Help: "HTTP/2 protocol errors and defences, by type (scope, code and cause as x/net/http2 names them, such as conn_enhance_your_calm_too_many_early_resets: the rapid-reset defence; conn_enhance_your_calm_flood: too many frames that serve no request).",
	}, []string{"type"})
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricLimitRefusals, Help: "Requests refused by a limit or policy of their application, by domain and limit (request_body_size: 413; origin_queue_full, origin_queue_timeout: 503; escaped_slash: 400).",
	}, []string{"domain", "limit"})
	m.reg.MustRegister(m.requests, m.verifications, m.handshakes, m.firewall, m.upstream, m.reloads, m.serial, m.domains, m.dropped, m.connected,
		m.limits, m.refused, open, parked, m.h2Timeouts, m.h2Errors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Reload results and handshake reasons show from the start, at zero.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	for _, t := range []string{"header", "idle", "body", "write"} {
		m.h2Timeouts.WithLabelValues(t)
	}
	return m
}

func (m *metrics) request(rec *edge.Record) {
	k := requestKey{rec.Domain, rec.Status}
	c, ok := m.reqChildren.Load(k)
	if !ok {
		c, _ = m.reqChildren.LoadOrStore(k, m.requests.WithLabelValues(rec.Domain, strconv.Itoa(rec.Status)))
	}
	c.(prometheus.Counter).Inc()
	if rec.FirewallRule != "" {
		m.firewall.WithLabelValues(rec.Domain, rec.FirewallRule, rec.FirewallAction).Inc()
	}
	if rec.Limit != "" {
		m.limits.WithLabelValues(rec.Domain, rec.Limit).Inc()
	}
	if rec.UpstreamStatus != 0 {
		o, ok := m.upChildren.Load(rec.Domain)
		if !ok {
			o, _ = m.upChildren.LoadOrStore(rec.Domain, m.upstream.WithLabelValues(rec.Domain))
		}
		o.(prometheus.Observer).Observe(rec.Upstream.Seconds())
	}
}

// h2Error is h2.Server.CountError: errType is the error's scope, code
// and cause, such as "conn_ENHANCE_YOUR_CALM_too_many_early_resets",
// counted in lower case.
func (m *metrics) h2Error(errType string) { m.h2Errors.WithLabelValues(strings.ToLower(errType)).Inc() }

func (m *metrics) verified(domain, verify string) {
	v, ok := m.verifyChildren.Load(domain)
	if !ok {
		v, _ = m.verifyChildren.LoadOrStore(domain, &verifyCounters{
			success: m.verifications.WithLabelValues(domain, "SUCCESS"),
			failed:  m.verifications.WithLabelValues(domain, "FAILED"),
			none:    m.verifications.WithLabelValues(domain, "NONE"),
		})
	}
	vc := v.(*verifyCounters)
	switch {
	case verify == pki.ClientVerifySuccess:
		vc.success.Inc()
	case strings.HasPrefix(verify, pki.ClientVerifyFailedPrefix):
		vc.failed.Inc()
	default:
		vc.none.Inc()
	}
}

func (m *metrics) setConnected(connected bool) {
	if connected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}
