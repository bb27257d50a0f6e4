package h1_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// FuzzServeConn feeds arbitrary bytes to a connection and checks that
// what the server writes back is a sequence of well-framed HTTP/1.1
// responses, that it never serves more requests than it was sent request
// lines, and that it never panics.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// methods are those of the requests the handler served, in
		// order: a response to HEAD has no body whatever its length says.
		var methods []string
		srv := &h1.Server{
			ReadHeaderTimeout: time.Second,
			MaxHeaderBytes:    4096,
			ErrorLog:          func(msg string, args ...any) { t.Errorf("%s %v", msg, args) },
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				methods = append(methods, r.Method)
				switch r.URL.Path {
				case "/echo":
					b, _ := io.ReadAll(r.Body)
					w.Header()["X-Value"] = []string{r.Header.Get("X")}
					w.Write(b)
				case "/chunked":
					w.Write([]byte("a"))
					w.(http.Flusher).Flush()
					w.Write([]byte("b"))
				default:
					w.Header().Set("Content-Length", "2")
					w.Write([]byte("ok"))
				}
			}),
		}
		var out bytes.Buffer
		srv.ServeConn(&scriptConn{in: bytes.NewReader(in), out: &out})

		br := bufio.NewReader(&out)
		responses := 0
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			method := http.MethodGet
			if responses < len(methods) {
				method = methods[responses]
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("response %d does not parse: %v\nin: %q", responses, err, in)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("response %d body: %v\nin: %q", responses, err, in)
			}
			if resp.StatusCode != http.StatusContinue {
				responses++
			}
		}
		if lines := bytes.Count(in, []byte(" HTTP/1.")); len(methods) > lines {
			t.Fatalf("served %d requests from %d request lines", len(methods), lines)
		}
	})
}

// scriptConn is a connection whose client sends in and then closes its
// side; what the server writes goes to out. If readSize is not zero, each
// read returns at most readSize bytes.
type scriptConn struct {
	in       *bytes.Reader
	out      *bytes.Buffer
	readSize int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.readSize > 0 && len(p) > c.readSize {
		p = p[:c.readSize]
	}
	return c.in.Read(p)
}
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }
