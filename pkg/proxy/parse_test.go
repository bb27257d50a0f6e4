package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// parsed is what a response parser made of raw bytes: the head's fields,
// the framing, the body read to its end and the trailers after it.
type parsed struct {
	Err              bool
	Status           string
	StatusCode       int
	Proto            string
	ProtoMajor       int
	ProtoMinor       int
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	NoBody           bool
	TrailerBefore    http.Header
	Body             string
	BodyErr          bool
	TrailerAfter     http.Header
	Rest             string // what is left in the reader after a body read to its end
}

func describe(resp *http.Response, err error, br *bufio.Reader) parsed {
	if err != nil {
		return parsed{Err: true}
	}
	p := parsed{
		Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto,
		ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: resp.Header.Clone(), ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close,
		NoBody: resp.Body == http.NoBody, TrailerBefore: resp.Trailer.Clone(),
	}
	body, err := io.ReadAll(resp.Body)
	p.Body, p.BodyErr = string(body), err != nil
	p.TrailerAfter = resp.Trailer.Clone()
	if err == nil {
		rest, _ := io.ReadAll(br)
		p.Rest = string(rest)
	}
	return p
}

// differ parses raw as a response to method with http.ReadResponse and
// with the connection's parser, and fails on any difference.
func differ(t *testing.T, method string, raw []byte) (std, ours parsed) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://origin.example/", nil)
	if req == nil {
		req = &http.Request{Method: method}
	}
	br := bufio.NewReaderSize(bytes.NewReader(raw), connBufferSize)
	resp, err := http.ReadResponse(br, req)
	std = describe(resp, err, br)

	var rr responseReader
	br = bufio.NewReaderSize(bytes.NewReader(raw), connBufferSize)
	resp, err = rr.read(br, req)
	ours = describe(resp, err, br)
	if !reflect.DeepEqual(std, ours) {
		t.Fatalf("method %q, response %q:\nnet/http: %+v\nedgectl:  %+v", method, raw, std, ours)
	}
	return std, ours
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nokNEXT",
	"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-custom-thing: a\r\nX-CUSTOM-THING: b\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\nX-Late: 2\r\n\r\nNEXT",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3 \r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nNEXT",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\nNEXT",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nFolded: a\r\n  b\r\n\tc\r\n  \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n Leading: space\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
	"HTTP/1.1 200 OK\r\nSpace Before : colon\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTab\t: colon\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
	"HTTP/1.1 200 OK\r\nCtl: a\x01b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBare: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nObs-Text: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nLF-Only: yes\nContent-Length: 1\n\nx",
	"HTTP/1.1  200  spaced\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 +20 OK\r\n\r\n",
	"HTTP/1.1 -20 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nBad Trailer\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX: 1\n\n",
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range responseSeeds {
		for _, m := range []string{"GET", "HEAD", "POST"} {
			f.Add(m, s, []byte(nil), false)
		}
	}
	f.Add("GET", "HTTP/1.1 200 OK|Content-Length: 3|X-A: b", []byte("abc"), true)
	f.Add("HEAD", "HTTP/1.1 200 OK|Transfer-Encoding: chunked|Trailer: a", []byte("0\r\n\r\n"), true)
	f.Add("GET", "HTTP/1.1 200 OK|Transfer-Encoding: chunked|Trailer: a", []byte("3\r\nabc\r\n0\r\nA: 1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, method, head string, body []byte, generated bool) {
		raw := []byte(head)
		if generated {
			// The head's lines separated by "|", with CRLF line ends
			// and the empty line added.
			raw = []byte(strings.ReplaceAll(head, "|", "\r\n") + "\r\n\r\n")
		}
		raw = append(raw, body...)
		differ(t, method, raw)
	})
}

func TestReadResponseLikeNetHTTP(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 3*connBufferSize) + "\r\nX-After: 1\r\nContent-Length: 2\r\n\r\nok"
	for _, s := range append(responseSeeds, long) {
		for _, m := range []string{"GET", "HEAD"} {
			differ(t, m, []byte(s))
		}
	}
}

func TestReadResponseFields(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-lower-custom: 1\r\nSpace Key : 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nFolded: a\r\n b\r\nContent-Length: 0\r\n\r\n"
	_, got := differ(t, "GET", []byte(raw))
	want := http.Header{
		"Content-Type":   {"text/plain"},
		"X-Lower-Custom": {"1"},
		"Space Key ":     {"2"},
		"Set-Cookie":     {"a=1", "b=2"},
		"Folded":         {"a b"},
		"Content-Length": {"0"},
	}
	if !reflect.DeepEqual(got.Header, want) {
		t.Errorf("header = %q, want %q", got.Header, want)
	}
}

// A head that arrives byte by byte, or longer than the connection's
// buffer, parses as one that arrives at once.
func TestReadResponseSlowAndLong(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 10000) + "\r\nContent-Length: 2\r\n\r\nok"
	for name, r := range map[string]io.Reader{
		"one byte at a time": iotest.OneByteReader(strings.NewReader(raw)),
		"at once":            strings.NewReader(raw),
	} {
		t.Run(name, func(t *testing.T) {
			var rr responseReader
			br := bufio.NewReaderSize(r, connBufferSize)
			resp, err := rr.read(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "ok" || len(resp.Header.Get("X-Long")) != 10000 {
				t.Fatalf("body %q, err %v, X-Long %d bytes", body, err, len(resp.Header.Get("X-Long")))
			}
		})
	}
}

// A malformed status line fails as soon as it is complete, as with
// net/http, not when the origin's (never coming) header fields end.
func TestReadResponseBadStatusLineFailsAtOnce(t *testing.T) {
	client, origin := net.Pipe()
	defer client.Close()
	defer origin.Close()
	go io.WriteString(origin, "SSH-2.0-OpenSSH_9.2\r\nmore")
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	var rr responseReader
	_, err := rr.read(bufio.NewReaderSize(client, connBufferSize), nil)
	if err == nil || !strings.Contains(err.Error(), "malformed HTTP response") {
		t.Fatalf("err = %v, want a malformed response", err)
	}
}

// The values of a response stay intact when the connection reads the
// next one: Relay hands them to the client's header, which the server
// writes after the connection went back to the pool.
func TestReadResponseValuesOutliveNextResponse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nX-A: first\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nX-A: second\r\nContent-Length: 0\r\n\r\n"
	var rr responseReader
	br := bufio.NewReaderSize(strings.NewReader(raw), connBufferSize)
	resp, err := rr.read(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := resp.Header["X-A"]
	if _, err := rr.read(br, nil); err != nil {
		t.Fatal(err)
	}
	if kept[0] != "first" {
		t.Fatalf("the first response's value became %q", kept[0])
	}
	if got := rr.header["X-A"]; len(got) != 1 || got[0] != "second" {
		t.Fatalf("second response's X-A = %q", got)
	}
	// Appending to a value (the response phase adds headers) never
	// writes into another field's.
	resp.Header["Content-Length"] = append(resp.Header["Content-Length"], "x")
	if resp.Header["X-A"][0] != "second" {
		t.Fatalf("an append overwrote another field: %q", resp.Header)
	}
}

// A common response head costs two allocations: its text and its values'
// slices; the Response, its header map and its body reader are the
// connection's.
func TestReadResponseAllocations(t *testing.T) {
	raw := []byte(benchResponse)
	var rr responseReader
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, connBufferSize)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		br.Reset(r)
		resp, err := rr.read(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%v allocations per response, want at most 2", allocs)
	}
}

const benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 16:00:00 GMT\r\nServer: origin\r\nx-request-id: 4f0c2a\r\nContent-Length: 12\r\n\r\n{\"ok\":true}\n"

// BenchmarkReadResponse compares the connection's parser with
// http.ReadResponse on a response head of five fields and a short body.
func BenchmarkReadResponse(b *testing.B) {
	raw := []byte(benchResponse)
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, connBufferSize)
	run := func(b *testing.B, read func() (*http.Response, error)) {
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(raw)
			br.Reset(r)
			resp, err := read()
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("edgectl", func(b *testing.B) {
		var rr responseReader
		run(b, func() (*http.Response, error) { return rr.read(br, nil) })
	})
	b.Run("net-http", func(b *testing.B) {
		run(b, func() (*http.Response, error) { return http.ReadResponse(br, nil) })
	})
}

// Requests share one origin connection (MaxConns 1): each client's
// header keeps the values of its own response after its exchange is
// released and the connection has carried the next responses, as a
// server that writes the head once the handler returned relies on.
func TestRelayedValuesOutliveRelease(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seq", r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: 5 * time.Second, MaxConns: 1, MaxQueue: 64, QueueTimeout: 5 * time.Second})
	defer o.Close()
	var clients []*discardWriter
	for i := range 10 {
		w := &discardWriter{h: http.Header{}}
		x, err := o.RoundTrip(context.Background(), httptest.NewRequest("GET", "https://edge.example/?n="+strconv.Itoa(i), nil), &Outbound{})
		if err != nil {
			t.Fatal(err)
		}
		keep, err := x.Relay(w)
		x.Release(keep)
		if err != nil || !keep {
			t.Fatalf("relay: %v, reusable %v", err, keep)
		}
		clients = append(clients, w)
	}
	for i, w := range clients {
		if got := w.h.Get("X-Seq"); got != strconv.Itoa(i) {
			t.Errorf("client %d's header X-Seq = %q once the connection carried the next responses", i, got)
		}
	}
}
