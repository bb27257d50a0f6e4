package h1_test

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// framed is what a handler saw of one request: what the request's framing
// decided (method, target, Host, the framing header fields the parser left,
// the body and whether reading it failed) and whether the connection is to
// close after it.
type framed struct {
	Method, Target, Host string
	ContentLength        int64
	TransferEncoding     []string
	LengthField          []string
	EncodingField        []string
	Connection           []string
	Close                bool
	Body                 string
	BodyErr              bool
}

// recorder is a handler that records each request as framed and answers
// it with a short body of known length.
type recorder struct {
	mu   sync.Mutex
	reqs []framed
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	f := framed{
		Method: r.Method, Target: r.RequestURI, Host: r.Host,
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		LengthField: r.Header["Content-Length"], EncodingField: r.Header["Transfer-Encoding"],
		Connection: r.Header["Connection"], Close: r.Close,
		Body: string(body), BodyErr: err != nil,
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, f)
	rec.mu.Unlock()
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "ok")
}

func (rec *recorder) framed() []framed {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]framed(nil), rec.reqs...)
}

// deliberate lists the refusals where pkg/server/h1 is deliberately
// stricter than net/http's server (see the Err* docs and
// docs/SECURITY.md): after one of them, net/http may frame more requests
// from the same bytes, and h1 must have agreed on every request before.
var deliberate = []error{
	h1.ErrObsFold,            // net/http joins the folded lines
	h1.ErrMethod,             // net/http takes any token ("get", "G1T")
	h1.ErrAsteriskForm,       // net/http serves "GET *"
	h1.ErrTransferEncoding10, // net/http ignores the field, reads the chunks as requests
	h1.ErrLeadingEmptyLine,   // net/http skips CR/LF after a POST
	h1.ErrVersion,            // net/http hands "PRI * HTTP/2.0" to its handler
	h1.ErrExpectation,        // net/http finds 100-continue inside "100-continue 00"
	h1.ErrHost,               // net/http does not check an absolute form's authority
}

// FuzzDifferential feeds the same bytes to pkg/server/h1 and to net/http's
// server, each over an in-memory connection whose client sends them and
// closes, with a handler that records every request as framed; it fails
// when the two disagree on what requests the bytes frame. h1 reads in
// pieces of readSize bytes (0: as much as is there), so its header
// scanner sees the bytes split at every boundary.
//
// The deliberate differences, where h1 frames a prefix of what net/http
// frames and then stops, are:
//   - a refusal whose cause is in deliberate (obs-fold, a method other
//     than A-Z "-" "_", "*" without OPTIONS, Transfer-Encoding in
//     HTTP/1.0, an empty line before a request line, the HTTP/2 preface
//     "PRI * HTTP/2.0", which net/http hands to its handler for h2c, an
//     Expect field that is not exactly 100-continue, an absolute-form
//     target whose authority has bytes no host has);
//   - a request with both Content-Length and Transfer-Encoding: both read
//     it as chunked, h1 marks it Close and closes after it (RFC 9112 §6.1);
//   - "OPTIONS *", which net/http's server answers itself: h1's handler
//     sees it, net/http's does not, and it is left out of the comparison;
//   - a request the parser marks Close (r.Close) in both: h1 closes after
//     it, while net/http's server keeps an HTTP/1.0 connection whose
//     Connection field merely contains "keep-alive" ("0 keep-alive"),
//     though its own parser said Close.
func FuzzDifferential(f *testing.F) {
	for _, s := range []string{
		// Plain and pipelined.
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\nHost: a\n\nGET /b HTTP/1.1\nHost: a\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a.test/x HTTP/1.1\r\nHost: b\r\n\r\n",
		"CONNECT a.test:443 HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		// CL.TE, TE.CL and obfuscated TE.TE.
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nX: y\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
		"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
		// Lengths.
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3 \r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 03\r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\na\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		// Hosts, methods, targets, versions.
		"GET http://a.test/ HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nHost: a b\r\n\r\n",
		"get / HTTP/1.1\r\nHost: a\r\n\r\n",
		"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX\x00: y\r\n\r\n",
		"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
	} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
	}
	f.Fuzz(func(t *testing.T, readSize uint8, in []byte) {
		h1Framed, h1Err := serveH1(t, in, int(readSize))
		stdFramed := serveStd(t, in)

		// net/http answers "OPTIONS *" without its handler.
		kept := h1Framed[:0:0]
		for _, r := range h1Framed {
			if r.Method != http.MethodOptions || r.Target != "*" {
				kept = append(kept, r)
			}
		}
		h1Framed = kept

		if len(h1Framed) > len(stdFramed) {
			t.Fatalf("h1 framed more requests than net/http\nin: %q\nh1: %+v\nnet/http: %+v", in, h1Framed, stdFramed)
		}
		closedForCLTE := false
		for i, got := range h1Framed {
			want := stdFramed[i]
			if got.Close && !want.Close && len(got.TransferEncoding) > 0 {
				// Content-Length with Transfer-Encoding: h1 closes.
				want.Close = true
				closedForCLTE = true
				if i != len(h1Framed)-1 {
					t.Fatalf("h1 served request %d after closing for CL+TE\nin: %q", i+1, in)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("request %d framed differently (-net/http +h1):\n%s\nin: %q", i, diff, in)
			}
		}
		if len(h1Framed) == len(stdFramed) || closedForCLTE {
			return
		}
		if n := len(h1Framed); n > 0 && h1Framed[n-1].Close && stdFramed[n-1].Close {
			// Both parsers marked the last request Close; net/http's
			// server may still keep the connection (below).
			return
		}
		var perr *h1.ProtocolError
		if !errors.As(h1Err, &perr) {
			t.Fatalf("h1 framed %d requests and stopped (%v); net/http framed %d\nin: %q\nnet/http's next: %+v", len(h1Framed), h1Err, len(stdFramed), in, stdFramed[len(h1Framed)])
		}
		for _, d := range deliberate {
			if errors.Is(perr, d) {
				return
			}
		}
		t.Fatalf("h1 refused request %d (%v), net/http framed it: %+v\nin: %q", len(h1Framed), perr, stdFramed[len(h1Framed)], in)
	})
}

// serveH1 serves in on one in-memory connection with pkg/server/h1.
func serveH1(t *testing.T, in []byte, readSize int) ([]framed, error) {
	rec := &recorder{}
	srv := &h1.Server{
		Handler:  rec,
		ErrorLog: func(msg string, args ...any) { t.Errorf("h1: %s %v", msg, args) },
	}
	var out bytes.Buffer
	err := srv.ServeConn(&scriptConn{in: bytes.NewReader(in), out: &out, readSize: readSize})
	return rec.framed(), err
}

// serveStd serves in on one in-memory connection with net/http's server
// and returns once the server has closed it.
func serveStd(t *testing.T, in []byte) []framed {
	rec := &recorder{}
	done := make(chan struct{})
	srv := &http.Server{
		Handler:  rec,
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				close(done)
			}
		},
	}
	ln := &oneConnListener{conn: &scriptConn{in: bytes.NewReader(in), out: &bytes.Buffer{}}, closed: make(chan struct{})}
	go srv.Serve(ln)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("net/http did not close the connection\nin: %q", in)
	}
	srv.Close()
	return rec.framed()
}

// oneConnListener accepts conn once, then blocks until closed.
type oneConnListener struct {
	once   sync.Once
	conn   net.Conn
	closed chan struct{}
	mu     sync.Mutex
	taken  bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.taken {
		l.taken = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
