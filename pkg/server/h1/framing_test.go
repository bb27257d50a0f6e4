package h1_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// framingServer serves on loopback a handler that records each request's
// method, target and body, and answers "<method> <target> <body>"; the
// errors ServeConn returns arrive on errs.
type framingServer struct {
	addr string
	errs chan error
	mu   sync.Mutex
	seen []string
}

func newFramingServer(t *testing.T) *framingServer {
	t.Helper()
	fs := &framingServer{errs: make(chan error, 16)}
	srv := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got := r.Method + " " + r.RequestURI + " " + r.Host + " " + string(body)
		fs.mu.Lock()
		fs.seen = append(fs.seen, got)
		fs.mu.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(got)))
		io.WriteString(w, got)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { fs.errs <- srv.ServeConn(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	fs.addr = ln.Addr().String()
	return fs
}

func (fs *framingServer) requests() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.seen...)
}

// serveErr waits for the error ServeConn returned for the connection.
func (fs *framingServer) serveErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-fs.errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

// TestFramingRefusals sends, over a raw socket, each request that RFC 9112
// says a server must refuse (or that nginx refuses), with a second request
// pipelined behind it that would be served if the first one's framing were
// misread. Each is answered with its status and the connection closed,
// the handler sees neither, and ServeConn returns a *ProtocolError whose
// cause says why.
func TestFramingRefusals(t *testing.T) {
	const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name, raw  string
		wantStatus int
		wantErr    error
	}{
		{"HTTP/1.0 with Transfer-Encoding", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + "2c\r\n" + next + "\r\n0\r\n\r\n", 400, h1.ErrTransferEncoding10},
		{"HTTP/1.0 with Transfer-Encoding and a length", "POST / HTTP/1.0\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + next, 400, h1.ErrTransferEncoding10},
		{"absolute form without Host", "GET http://a.test/ HTTP/1.1\r\n\r\n" + next, 400, h1.ErrMissingHost},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n b\r\n\r\n" + next, 400, h1.ErrObsFold},
		{"obs-fold of Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + next, 400, h1.ErrObsFold},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tb\r\n\r\n" + next, 400, h1.ErrObsFold},
		{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n" + next, 400, h1.ErrMethod},
		{"mixed-case method", "Post / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + next, 400, h1.ErrMethod},
		{"method with a digit", "G1T / HTTP/1.1\r\nHost: a\r\n\r\n" + next, 400, h1.ErrMethod},
		{"asterisk form with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n" + next, 400, h1.ErrAsteriskForm},
		{"Host with a space after an absolute form", "GET http://a.test/ HTTP/1.1\r\nHost: a b\r\n\r\n" + next, 400, h1.ErrHost},
		{"empty line before the request", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, h1.ErrLeadingEmptyLine},
		{"two transfer encodings", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, 501, h1.ErrUnsupportedTransferEncoding},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + next, 501, h1.ErrUnsupportedTransferEncoding},
		{"garbage", "HELLO\r\n\r\n", 400, h1.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFramingServer(t)
			c, br := dial(t, fs.addr)
			resp, body := exchange(t, c, br, "GET", tt.raw)
			if resp.StatusCode != tt.wantStatus || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tt.wantStatus)
			}
			if !closed(c, br) {
				t.Fatal("the connection stayed open")
			}
			err := fs.serveErr(t)
			var perr *h1.ProtocolError
			if !errors.As(err, &perr) || perr.Status != tt.wantStatus || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ServeConn returned %v, want a *ProtocolError %d wrapping %q", err, tt.wantStatus, tt.wantErr)
			}
			if want := http.StatusText(tt.wantStatus) + ": " + tt.wantErr.Error() + "\n"; body != want {
				t.Fatalf("body %q, want %q", body, want)
			}
			if got := fs.requests(); len(got) != 0 {
				t.Fatalf("the handler saw %q", got)
			}
		})
	}
}

// TestContentLengthWithTransferEncoding checks RFC 9112 §6.1: a request
// with both is read as chunked (not by its length, which would serve the
// chunked body's bytes as a second request) and the connection is closed
// after the response, so nothing after it is read as a request.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	for _, tt := range []struct{ name, raw string }{
		{"length first", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"encoding first", "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"},
		{"odd spellings", "POST /a HTTP/1.1\r\nHost: a\r\ncontent-length: 4\r\nTRANSFER-ENCODING:  Chunked \r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFramingServer(t)
			c, br := dial(t, fs.addr)
			raw := tt.raw + "3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
			resp, body := exchange(t, c, br, "POST", raw)
			if resp.StatusCode != 200 || body != "POST /a a abc" || !resp.Close {
				t.Fatalf("status %d body %q close %v, want 200 %q and close", resp.StatusCode, body, resp.Close, "POST /a a abc")
			}
			if !closed(c, br) {
				t.Fatal("the connection stayed open")
			}
			if err := fs.serveErr(t); err != nil {
				t.Fatalf("ServeConn returned %v for a served request", err)
			}
			if diff := cmp.Diff([]string{"POST /a a abc"}, fs.requests()); diff != "" {
				t.Fatalf("requests served (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFramingAccepted checks that what RFC 9112 allows is still served,
// pipelined on one kept-alive connection: OPTIONS * reaches the handler
// with the target "*" (r.RequestURI and r.URL.Path), an absolute form with
// a Host field takes its authority from the target, HTTP/1.0 with a
// length is framed by it, methods of capitals and dashes pass, and a
// chunked body alone keeps the connection.
func TestFramingAccepted(t *testing.T) {
	fs := newFramingServer(t)
	c, br := dial(t, fs.addr)
	reqs := []struct{ method, raw, want string }{
		{"OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * a "},
		{"GET", "GET http://b.test/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n", "GET http://b.test/x?y b.test "},
		{"POST", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST /c a abc"},
		{"M-SEARCH", "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"PROPFIND", "PROPFIND /d HTTP/1.1\r\nHost: a\r\nX-Long: a, b\r\n\r\n", "PROPFIND /d a "},
		{"POST", "POST /e HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi", "POST /e  hi"},
		{"GET", "GET /f HTTP/1.1\r\nHost: a\r\n\r\n", "GET /f a "},
	}
	var all strings.Builder
	for _, r := range reqs {
		all.WriteString(r.raw)
	}
	if _, err := io.WriteString(c, all.String()); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		resp, body := exchange(t, c, br, r.method, "")
		if r.want == "" {
			// "M-SEARCH *" is asterisk form with a method other than
			// OPTIONS: refused, and the rest is not read.
			if resp.StatusCode != 400 || !resp.Close {
				t.Fatalf("request %d: status %d close %v, want 400 and close", i, resp.StatusCode, resp.Close)
			}
			break
		}
		if resp.StatusCode != 200 || body != r.want || resp.Close {
			t.Fatalf("request %d: status %d body %q close %v, want 200 %q kept alive", i, resp.StatusCode, body, resp.Close, r.want)
		}
	}
	if diff := cmp.Diff([]string{"OPTIONS * a ", "GET http://b.test/x?y b.test ", "POST /c a abc"}, fs.requests()); diff != "" {
		t.Fatalf("requests served (-want +got):\n%s", diff)
	}

	// The same without the refused one: all served, the connection open.
	c, br = dial(t, fs.addr)
	all.Reset()
	var want []string
	for _, r := range reqs {
		if r.want != "" {
			all.WriteString(r.raw)
			want = append(want, r.want)
		}
	}
	io.WriteString(c, all.String())
	var got []string
	for _, r := range reqs {
		if r.want == "" {
			continue
		}
		resp, body := exchange(t, c, br, r.method, "")
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s: status %d close %v, want 200 kept alive", r.method, resp.StatusCode, resp.Close)
		}
		got = append(got, body)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("responses (-want +got):\n%s", diff)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := br.ReadByte(); !isTimeout(err) {
		t.Fatalf("after the pipelined requests, read %v; want the connection open and idle", err)
	}
}
