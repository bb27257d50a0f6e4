package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// parsedRequest is what a request parser made of raw bytes: every field
// http.ReadRequest sets, the body read to its end, the trailers after it
// and what is left of the stream.
type parsedRequest struct {
	Err                         bool
	Method, RequestURI, Proto   string
	ProtoMajor, ProtoMinor      int
	URL                         *url.URL
	Header                      http.Header
	Host                        string
	Close                       bool
	ContentLength               int64
	TransferEncoding            []string
	NoBody                      bool
	TrailerBefore, TrailerAfter http.Header
	Body                        string
	BodyErr                     bool
	Rest                        string
}

func describeRequest(req *http.Request, err error, br *bufio.Reader) parsedRequest {
	if err != nil {
		return parsedRequest{Err: true}
	}
	p := parsedRequest{
		Method: req.Method, RequestURI: req.RequestURI, Proto: req.Proto,
		ProtoMajor: req.ProtoMajor, ProtoMinor: req.ProtoMinor,
		URL: req.URL, Header: req.Header.Clone(), Host: req.Host, Close: req.Close,
		ContentLength: req.ContentLength, TransferEncoding: req.TransferEncoding,
		NoBody: req.Body == http.NoBody, TrailerBefore: req.Trailer.Clone(),
	}
	if req.URL != nil {
		u := *req.URL
		p.URL = &u
	}
	body, err := io.ReadAll(req.Body)
	p.Body, p.BodyErr = string(body), err != nil
	p.TrailerAfter = req.Trailer.Clone()
	if err == nil {
		rest, _ := io.ReadAll(br)
		p.Rest = string(rest)
	}
	return p
}

// differRequest parses raw with http.ReadRequest and with the
// connection's parser, and fails on any difference.
func differRequest(t *testing.T, raw []byte) (std, ours parsedRequest) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	req, err := http.ReadRequest(br)
	std = describeRequest(req, err, br)

	p := requestReaders.Get().(*requestReader)
	defer p.release()
	br = bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	req, err = p.read(br, nil)
	ours = describeRequest(req, err, br)
	if !reflect.DeepEqual(std, ours) {
		t.Fatalf("request %q:\nnet/http: %+v\nh1:       %+v", raw, std, ours)
	}
	return std, ours
}

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /v1/accounts?x=1&y=%20 HTTP/1.1\r\nHost: api.test\r\nuser-agent: curl\r\nAccept: */*\r\n\r\nNEXT",
	"GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a!*'();:@&=+$,[] HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //double HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /q?\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a.test:8080/x?y HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET HTTP://User@A.test/x HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
	"CONNECT /rpc HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET relative HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
	"GET /\r\nHost: a\r\n\r\n",
	"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcNEXT",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nshort",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\nNEXT",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nab",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\n X: a\r\n\r\n",
	"GET / HTTP/1.1\r\nX : a\r\n\r\n",
	"GET / HTTP/1.1\r\nX\x00: a\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"\r\nGET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
}

// FuzzReadRequest compares the connection's request parser with
// http.ReadRequest, field by field, through the body, its trailers and
// what is left of the stream, on raw requests and on requests generated
// from a request line, "|"-separated header lines and a body.
func FuzzReadRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add(s, []byte(nil), false)
	}
	f.Add("GET /a?b HTTP/1.1|Host: a|X-A: b", []byte(nil), true)
	f.Add("POST /a HTTP/1.1|Host: a|Content-Length: 3", []byte("abc"), true)
	f.Add("POST /a HTTP/1.1|Host: a|Transfer-Encoding: chunked|Trailer: x", []byte("3\r\nabc\r\n0\r\nX: 1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, head string, body []byte, generated bool) {
		raw := []byte(head)
		if generated {
			raw = []byte(strings.ReplaceAll(head, "|", "\r\n") + "\r\n\r\n")
		}
		differRequest(t, append(raw, body...))
	})
}

func TestReadRequestLikeNetHTTP(t *testing.T) {
	long := "GET /" + strings.Repeat("p", 5000) + " HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 9000) + "\r\n\r\n"
	for _, s := range append(requestSeeds, long) {
		differRequest(t, []byte(s))
	}
}

// A handler may keep a request's header values; the connection's next
// request does not change them.
func TestReadRequestValuesOutliveNextRequest(t *testing.T) {
	raw := "GET /1 HTTP/1.1\r\nHost: a\r\nX-A: first\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX-A: second\r\n\r\n"
	p := requestReaders.Get().(*requestReader)
	defer p.release()
	br := bufio.NewReaderSize(strings.NewReader(raw), 4<<10)
	req, err := p.read(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, path := req.Header["X-A"], req.URL.Path
	if req, err = p.read(br, nil); err != nil {
		t.Fatal(err)
	}
	if kept[0] != "first" || path != "/1" || req.Header["X-A"][0] != "second" || req.URL.Path != "/2" {
		t.Fatalf("kept %q %q, next %q %q", kept, path, req.Header["X-A"], req.URL.Path)
	}
}

// A common request head costs two allocations: its text and its values'
// slices. The Request, its URL, header map and body are the reader's.
func TestReadRequestAllocations(t *testing.T) {
	raw := []byte(benchRequest)
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, 4<<10)
	p := requestReaders.Get().(*requestReader)
	defer p.release()
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		br.Reset(r)
		if _, err := p.read(br, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%v allocations per request, want at most 2", allocs)
	}
}

const benchRequest = "GET /v1/accounts/42/transactions?limit=10 HTTP/1.1\r\nHost: api.bank.example\r\nUser-Agent: partner-client/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\nX-Request-Id: 4f0c2a\r\nAuthorization: Bearer abc\r\n\r\n"

// BenchmarkReadRequest compares the connection's parser with
// http.ReadRequest on a GET with six header fields.
func BenchmarkReadRequest(b *testing.B) {
	raw := []byte(benchRequest)
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, 4<<10)
	b.Run("h1", func(b *testing.B) {
		p := requestReaders.Get().(*requestReader)
		defer p.release()
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(raw)
			br.Reset(r)
			if _, err := p.read(br, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net-http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(raw)
			br.Reset(r)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
