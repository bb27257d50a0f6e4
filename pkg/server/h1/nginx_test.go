package h1_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/nginxtest"
	"github.com/edgectl/edgectl/pkg/server/h1"
)

// outcome is what a client sees of a raw exchange: the status class of
// each response, in order ("2xx 4xx"), and whether the server closed the
// connection after them.
type outcome struct {
	statuses string
	closed   bool
}

func (o outcome) String() string {
	state := "kept open"
	if o.closed {
		state = "closed"
	}
	return fmt.Sprintf("%q, %s", o.statuses, state)
}

// TestAgainstNginx sends the same raw bytes to nginx (a "return 200"
// location) and to pkg/server/h1 beside it, and compares the status class
// of each response and whether the connection was closed. Where edgectl
// deliberately differs from nginx, the row gives nginx's outcome and why.
// It needs nginx (Debian's nginx package, installed by make tools): it
// skips without it, or fails when CI is "true".
func TestAgainstNginx(t *testing.T) {
	ngx := startNginx(t)
	edge := serve(t, &h1.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As nginx: the body is read (and discarded) before answering.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	}))

	const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	same := (*outcome)(nil)
	tests := []struct {
		name  string
		raw   string
		edge  outcome
		nginx *outcome // nil: as edge
		why   string   // why edgectl differs
	}{
		{"GET", get, outcome{"2xx", false}, same, ""},
		{"pipelined GETs", get + get, outcome{"2xx 2xx", false}, same, ""},
		{"POST with a length, then GET", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get, outcome{"2xx 2xx", false}, same, ""},
		{"chunked POST, then GET", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get, outcome{"2xx 2xx", false}, same, ""},
		{"bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", outcome{"2xx", false}, same, ""},
		{"HTTP/1.0 keep-alive, then HTTP/1.0", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n" + get, outcome{"2xx 2xx", true}, same, ""},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + get, outcome{"2xx", true}, same, ""},
		{"absolute form with Host", "GET http://a.test/x HTTP/1.1\r\nHost: b\r\n\r\n" + get, outcome{"2xx 2xx", false}, same, ""},
		{"absolute form without Host", "GET http://a.test/x HTTP/1.1\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"no Host", "GET / HTTP/1.1\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n b\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"method with a digit", "G1T / HTTP/1.1\r\nHost: a\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"M-SEARCH", "M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n" + get, outcome{"2xx 2xx", false}, same, ""},
		{"GET *", "GET * HTTP/1.1\r\nHost: a\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"HTTP/1.0 with Transfer-Encoding", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n1c\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n", outcome{"4xx", true}, same, ""},
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" + get, outcome{"5xx", true}, same, ""},
		{"Transfer-Encoding chunked twice in one field", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + get, outcome{"5xx", true}, same, ""},
		{"two different lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + get, outcome{"4xx", true}, same, ""},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\na\r\n0\r\n\r\n" + get, outcome{"4xx", true}, same, ""},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", outcome{"5xx", true}, same, ""},
		{
			"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get,
			outcome{"2xx", true}, &outcome{"4xx", true},
			"RFC 9112 §6.1 lets a server either refuse or read chunked and close; edgectl reads chunked and closes, nginx refuses",
		},
		{
			"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" + get,
			outcome{"2xx 2xx", false}, &outcome{"4xx", true},
			"edgectl hands OPTIONS * on to the origin (RFC 9112 §3.2.4); nginx has no asterisk form",
		},
		{
			"empty line before the request line", "\r\n" + get,
			outcome{"4xx", true}, &outcome{"2xx", false},
			"edgectl refuses what RFC 9112 §2.2 says a server SHOULD skip; nginx skips it (as net/http after a POST)",
		},
		{"space before the colon of Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc" + get, outcome{"4xx", true}, same, ""},
		{
			"an expectation other than 100-continue", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n" + get,
			outcome{"4xx", true}, &outcome{"2xx 2xx", false},
			"RFC 9110 §10.1.1 lets a server answer 417 (net/http does too); nginx ignores Expect",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantNginx := tt.edge
			if tt.nginx != nil {
				wantNginx = *tt.nginx
			}
			gotNginx, gotEdge := rawOutcome(t, ngx, tt.raw), rawOutcome(t, edge, tt.raw)
			if gotNginx != wantNginx {
				t.Errorf("nginx: %v, want %v", gotNginx, wantNginx)
			}
			if gotEdge != tt.edge {
				t.Errorf("edgectl: %v, want %v", gotEdge, tt.edge)
			}
			if tt.nginx != nil && tt.why == "" || tt.nginx == nil && tt.why != "" {
				t.Errorf("a row that differs from nginx says why, and only such a row")
			}
		})
	}
}

// rawOutcome writes raw to a new connection to addr and reads every
// response until the server closes the connection or stays silent.
func rawOutcome(t *testing.T, addr, raw string) outcome {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var statuses []string
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return outcome{strings.Join(statuses, " "), false}
			}
			return outcome{strings.Join(statuses, " "), true}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: response %d: %v", addr, len(statuses)+1, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("%s: response %d body: %v", addr, len(statuses)+1, err)
		}
		if resp.StatusCode >= 200 {
			statuses = append(statuses, fmt.Sprintf("%dxx", resp.StatusCode/100))
		}
	}
}

// startNginx runs nginx on a loopback port with one location answering
// 200, and returns its address.
func startNginx(t *testing.T) string {
	return nginxtest.Start(t, "", func(addr string) string {
		return fmt.Sprintf(`lingering_timeout 100ms;
server {
	listen %s;
	location / { return 200 "ok\n"; }
}`, addr)
	})
}
