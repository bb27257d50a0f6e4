package h2_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/pkg/server/h2"
)

// The differential fuzz: a client byte stream built from the fuzz input
// (the preface, then HEADERS with chosen fields, CONTINUATION, DATA,
// RST_STREAM, WINDOW_UPDATE, SETTINGS, PING, PRIORITY and GOAWAY frames)
// is fed to this server and to x/net/http2's, each behind the same echo
// handler, and the normalised outcomes must agree: the requests that
// reached the handler (method, URI, authority, header fields), each
// stream's status and echoed body, or the code of the first RST_STREAM it
// got, and the code of the connection's GOAWAY, if any. The differences
// the package documents are allowed, and only those (sameOutcome).

// genInput builds a client byte stream from fuzz data.
type genInput struct {
	data []byte
	i    int
}

func (g *genInput) b() byte {
	if g.i >= len(g.data) {
		return 0
	}
	v := g.data[g.i]
	g.i++
	return v
}

func (g *genInput) pick(n int) int { return int(g.b()) % n }

// Header fields the generator chooses from.
var (
	fuzzBase = [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h2.test"}, {":path", "/"}}
	fuzzPool = [][2]string{
		{":method", "GET"}, {":method", "POST"}, {":method", "HEAD"}, {":method", "CONNECT"}, {":method", ""}, {":method", "get"},
		{":scheme", "https"}, {":scheme", "http"}, {":scheme", "ftp"},
		{":path", "/"}, {":path", "/a/b?c=d"}, {":path", ""}, {":path", "x"}, {":path", "*"}, {":path", "/%zz"}, {":path", "//x"},
		{":path", "/a?"}, {":path", "/a%20b?q=%41"}, {":path", "/\xc3\xa9"}, {":path", "/a#f"}, {":path", "/~u/a-b_c.d;p=1?x&y="}, {":path", "/a?b\x7f"},
		{":authority", "h2.test"}, {":authority", ""}, {":authority", "u@h2.test"}, {":authority", "a b"}, {":authority", "h2.test:443"},
		{":protocol", "websocket"}, {":status", "200"}, {":foo", "x"},
		{"host", "h2.test"}, {"host", "other.test"},
		{"content-length", "0"}, {"content-length", "3"}, {"content-length", "x"}, {"content-length", "10"},
		{"te", "trailers"}, {"te", "gzip"}, {"connection", "close"}, {"keep-alive", "1"}, {"upgrade", "h2c"},
		{"transfer-encoding", "chunked"}, {"proxy-connection", "x"},
		{"x-a", "1"}, {"x-a", "2"}, {"X-Up", "1"}, {"x-nul", "a\x00b"}, {"x-lf", "a\nb"}, {"x b", "1"}, {"x_u", "1"},
		{"cookie", "a=1"}, {"cookie", "b=2"}, {"expect", "100-continue"}, {"trailer", "x-t"}, {"x-t", "v"},
		{"x-long", strings.Repeat("v", 1500)},
	}
	fuzzCodes = []http2.ErrCode{http2.ErrCodeNo, http2.ErrCodeProtocol, http2.ErrCodeCancel, http2.ErrCodeInternal, http2.ErrCodeRefusedStream, 0x77}
	fuzzIncr  = []uint32{0, 1, 100, 65535, 1 << 20, 1<<31 - 1}
)

// build returns the client's bytes, the streams it opened, and those it
// sent HEADERS on more than once.
func (g *genInput) build() (input []byte, opened []uint32, reused map[uint32]bool) {
	reused = map[uint32]bool{}
	headersOn := map[uint32]bool{}
	var out, hbuf bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	fr.AllowIllegalWrites = true
	enc := hpack.NewEncoder(&hbuf)
	ended := map[uint32]bool{}
	next := uint32(1)
	if g.pick(8) != 0 {
		fr.WriteSettings()
	}
	streamID := func() uint32 {
		switch g.pick(8) {
		case 0:
			return 0
		case 1:
			return next // idle
		case 2:
			return 2
		default:
			if next > 1 {
				return next - 2 - 2*uint32(g.pick(int(next/2)))%next
			}
			return 1
		}
	}
	block := func(base bool) []byte {
		hbuf.Reset()
		if base {
			for _, f := range fuzzBase {
				if f[0] == ":method" && g.pick(3) == 0 {
					f[1] = "POST"
				}
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
		}
		for n := g.pick(5); n > 0; n-- {
			f := fuzzPool[g.pick(len(fuzzPool))]
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: g.pick(4) == 0})
		}
		return bytes.Clone(hbuf.Bytes())
	}
	for ops := 0; ops < 48 && g.i < len(g.data); ops++ {
		switch op := g.pick(12); op {
		case 0, 1, 2:
			flags := g.b()
			id := next
			if flags&0x40 != 0 {
				id = streamID()
			} else {
				next += 2
			}
			end := flags&1 != 0
			p := http2.HeadersFrameParam{StreamID: id, BlockFragment: block(flags&2 == 0), EndStream: end, EndHeaders: flags&4 == 0}
			if flags&8 != 0 {
				p.Priority = http2.PriorityParam{StreamDep: streamID(), Weight: g.b()}
			}
			fr.WriteHeaders(p)
			if headersOn[id] {
				reused[id] = true
			}
			headersOn[id] = true
			if _, ok := ended[id]; !ok && id%2 == 1 {
				opened = append(opened, id)
				ended[id] = false
			}
			if end {
				ended[id] = true
			}
		case 3:
			fr.WriteContinuation(streamID(), g.pick(2) == 0, block(false))
		case 4, 5, 6:
			id, flags := streamID(), g.b()
			n := int(g.b())
			if flags&2 != 0 {
				n *= 64
			}
			end := flags&1 != 0
			if flags&4 != 0 {
				fr.WriteDataPadded(id, end, bytes.Repeat([]byte("d"), n), make([]byte, g.pick(8)))
			} else {
				fr.WriteData(id, end, bytes.Repeat([]byte("d"), n))
			}
			if end {
				ended[id] = true
			}
		case 7:
			id := streamID()
			fr.WriteRSTStream(id, fuzzCodes[g.pick(len(fuzzCodes))])
			ended[id] = true
		case 8:
			fr.WriteWindowUpdate(streamID(), fuzzIncr[g.pick(len(fuzzIncr))])
		case 9:
			switch g.pick(6) {
			case 0:
				fr.WriteSettingsAck()
			case 1:
				fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: []uint32{0, 10, 65535, 1 << 31}[g.pick(4)]})
			case 2:
				fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: []uint32{100, 16384, 1 << 20}[g.pick(3)]})
			case 3:
				fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: []uint32{0, 100, 1 << 20}[g.pick(3)]})
			case 4:
				fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: uint32(g.pick(3))})
			default:
				fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 5}, http2.Setting{ID: 0x99, Val: 1})
			}
		case 10:
			if g.pick(2) == 0 {
				fr.WritePing(g.pick(4) == 0, [8]byte{1})
			} else {
				fr.WritePriority(streamID(), http2.PriorityParam{StreamDep: streamID(), Weight: g.b()})
			}
		case 11:
			if g.pick(4) == 0 {
				// The client's last frame: what follows a GOAWAY races
				// with x/net's graceful close of an idle connection.
				fr.WriteGoAway(next, fuzzCodes[g.pick(len(fuzzCodes))], nil)
				g.i = len(g.data)
			} else {
				fr.WritePushPromise(http2.PushPromiseParam{StreamID: streamID(), PromiseID: 2, BlockFragment: block(true), EndHeaders: true})
			}
		}
	}
	// Every stream opened ends its body, so that no handler waits for it.
	for _, id := range opened {
		if !ended[id] {
			fr.WriteData(id, true, nil)
		}
	}
	return out.Bytes(), opened, reused
}

// fuzzOutcome is what a server did with a client byte stream.
type fuzzOutcome struct {
	// Handled are the requests that reached the handler, sorted.
	Handled []string
	// Status is each stream's final status and echoed body, for the
	// streams that the server did not reset.
	Status map[uint32]string
	// Reset is the code of the first RST_STREAM of each stream.
	Reset map[uint32]string
	// GoAway is the code of the connection's last GOAWAY, if any.
	GoAway string
	// Stuck is set when a handler was still running at the end.
	Stuck bool
}

// echoHandler records each request's head and answers with its body's
// digest in a header (the response has no body: its HEADERS are not
// flow-controlled, so no handler waits for a window).
type echoHandler struct {
	mu       sync.Mutex
	handled  []string
	inflight atomic.Int64
}

func (h *echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	var fields []string
	for k, vv := range r.Header {
		fields = append(fields, fmt.Sprintf("%s=%q", k, vv))
	}
	sort.Strings(fields)
	h.mu.Lock()
	u := r.URL
	url := fmt.Sprintf("scheme=%q opaque=%q host=%q path=%q rawpath=%q query=%q force=%v fragment=%q user=%v",
		u.Scheme, u.Opaque, u.Host, u.Path, u.RawPath, u.RawQuery, u.ForceQuery, u.Fragment, u.User != nil)
	h.handled = append(h.handled, fmt.Sprintf("%s %q %s host=%q len=%d %s", r.Method, r.RequestURI, url, r.Host, r.ContentLength, strings.Join(fields, " ")))
	h.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	var trailers []string
	for k, vv := range r.Trailer {
		trailers = append(trailers, fmt.Sprintf("%s=%q", k, vv))
	}
	sort.Strings(trailers)
	w.Header().Set("X-Body", fmt.Sprintf("%d:%x:%v:%s", len(body), sha256.Sum256(body), err != nil, strings.Join(trailers, ",")))
	w.WriteHeader(http.StatusOK)
}

// runFuzzConn feeds input to serve over net.Pipe and returns the outcome.
func runFuzzConn(input []byte, h *echoHandler, serve func(net.Conn)) fuzzOutcome {
	cli, srv := net.Pipe()
	go serve(srv)
	out := fuzzOutcome{Status: map[uint32]string{}, Reset: map[uint32]string{}}
	var mu sync.Mutex
	var lastFrame atomic.Int64
	lastFrame.Store(time.Now().UnixNano())
	pong := make(chan struct{}, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		fr := http2.NewFramer(nil, cli)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.MaxHeaderListSize = 1 << 20
		for {
			f, err := fr.ReadFrame()
			lastFrame.Store(time.Now().UnixNano())
			if err != nil {
				var se http2.StreamError
				if errors.As(err, &se) {
					continue
				}
				return
			}
			mu.Lock()
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if st := f.PseudoValue("status"); st != "" && st[0] != '1' {
					if _, ok := out.Status[f.StreamID]; !ok {
						var body string
						for _, hf := range f.RegularFields() {
							if hf.Name == "x-body" {
								body = hf.Value
							}
						}
						out.Status[f.StreamID] = st + " " + body
					}
				}
			case *http2.RSTStreamFrame:
				if _, ok := out.Reset[f.StreamID]; !ok {
					out.Reset[f.StreamID] = f.ErrCode.String()
				}
			case *http2.GoAwayFrame:
				// The last GOAWAY is how the connection ended: x/net
				// turns a pending graceful GOAWAY into an error one
				// when an error follows before it is written.
				out.GoAway = f.ErrCode.String()
				// Nothing more will be answered (an error), or only the
				// streams in flight (NO_ERROR).
				select {
				case pong <- struct{}{}:
				default:
				}
			case *http2.PingFrame:
				if f.IsAck() && f.Data == [8]byte{'b', 'a', 'r', 'r', 'i', 'e', 'r'} {
					select {
					case pong <- struct{}{}:
					default:
					}
				}
			}
			mu.Unlock()
		}
	}()
	// The input, then a PING: its ACK says the server read everything.
	cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var barrier bytes.Buffer
	http2.NewFramer(&barrier, nil).WritePing(false, [8]byte{'b', 'a', 'r', 'r', 'i', 'e', 'r'})
	// Written on the side: a server that stopped reading after a
	// connection error would hold the write until it closes.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := cli.Write(input); err == nil {
			cli.Write(barrier.Bytes())
		}
	}()
	select {
	case <-pong:
	case <-readDone:
	case <-time.After(2 * time.Second):
	}
	mu.Lock()
	failed := out.GoAway != "" && out.GoAway != http2.ErrCodeNo.String()
	mu.Unlock()
	if failed {
		// After a connection error nothing more is sent: the handlers end
		// with the connection.
		cli.Close()
	}
	// The handlers finish, then the server goes quiet.
	for end := time.Now().Add(2 * time.Second); h.inflight.Load() > 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	out.Stuck = h.inflight.Load() > 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if time.Since(time.Unix(0, lastFrame.Load())) > 30*time.Millisecond {
			break
		}
	}
	cli.Close()
	<-readDone
	<-wrote
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	out.Handled = append([]string(nil), h.handled...)
	h.mu.Unlock()
	sort.Strings(out.Handled)
	for id := range out.Reset {
		delete(out.Status, id)
	}
	return out
}

// fuzzMaxHeaderBytes is both servers' header limit.
const fuzzMaxHeaderBytes = 4 << 10

func FuzzDifferential(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{1, 0, 0},                       // a GET
		{1, 0, 1, 0, 4, 0, 5, 1, 3},     // POST-ish with DATA
		{1, 0, 4, 3, 1, 0},              // HEADERS then CONTINUATION
		{1, 0, 0x41, 7, 0, 1},           // HEADERS on a chosen stream, RST
		{1, 9, 1, 1, 0, 2, 8, 3, 3},     // SETTINGS window 10, WINDOW_UPDATE
		{1, 10, 0, 11, 0, 0},            // PING, GOAWAY
		{1, 0, 0x08, 3, 3, 10, 1, 3},    // priority, PRIORITY
		{0, 4, 1, 1, 5},                 // DATA first, no SETTINGS
		{1, 0, 2, 3, 26, 5, 1, 4, 0, 1}, // fields from the pool
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &genInput{data: data}
		input, _, reused := g.build()
		var mine, theirs fuzzOutcome
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			h := &echoHandler{}
			srv := &h2.Server{Handler: h, MaxHeaderBytes: fuzzMaxHeaderBytes,
				ErrorLog: func(msg string, args ...any) { t.Errorf("h2: %s %v", msg, args) }}
			mine = runFuzzConn(input, h, func(c net.Conn) { srv.ServeConn(c) })
			srv.Close()
		}()
		go func() {
			defer wg.Done()
			h := &echoHandler{}
			srv := &http2.Server{}
			theirs = runFuzzConn(input, h, func(c net.Conn) {
				srv.ServeConn(c, &http2.ServeConnOpts{Handler: h, BaseConfig: &http.Server{MaxHeaderBytes: fuzzMaxHeaderBytes, ErrorLog: log.New(io.Discard, "", 0)}})
			})
		}()
		wg.Wait()
		if diff := cmp.Diff(theirs, mine); diff != "" && !sameOutcome(theirs, mine, reused) {
			t.Fatalf("outcomes differ for input %x (-x/net +h2):\n%s", input, diff)
		}
	})
}

// sameOutcome allows the differences the package documents:
//   - a stream over the concurrency limit is refused with REFUSED_STREAM
//     where x/net says PROTOCOL_ERROR once its SETTINGS are acknowledged;
//   - after a connection error, which of the responses and RST_STREAM
//     frames in flight leave before the GOAWAY depends on timing, in both
//     servers (x/net drops what it had queued): with the same GOAWAY
//     error, only the streams both answered or reset are compared;
//   - a second HEADERS on a stream races with the stream's end, in both
//     servers: taken as trailers (or refused with STREAM_CLOSED) while
//     the stream is open, as a stream ID going down (the connection
//     closed with PROTOCOL_ERROR) once it has ended; and HEADERS on a
//     stream the server has just reset are ignored (RFC 9113 §5.1), where
//     x/net ignores them only until its RST_STREAM is written (and then
//     closes the connection, the frames after it unread). When the client
//     sent HEADERS again on a stream that a server reset, or a server
//     closed the connection with PROTOCOL_ERROR after such HEADERS, the
//     outcomes are not compared.
func sameOutcome(theirs, mine fuzzOutcome, reused map[uint32]bool) bool {
	protocol := http2.ErrCodeProtocol.String()
	if len(reused) > 0 {
		if theirs.GoAway == protocol || mine.GoAway == protocol {
			return true
		}
		for id := range reused {
			_, t := theirs.Reset[id]
			_, m := mine.Reset[id]
			if t || m {
				return true
			}
		}
	}
	norm := func(o fuzzOutcome) fuzzOutcome {
		r := map[uint32]string{}
		for id, code := range o.Reset {
			if code == "REFUSED_STREAM" {
				code = "PROTOCOL_ERROR"
			}
			r[id] = code
		}
		o.Reset = r
		return o
	}
	theirs, mine = norm(theirs), norm(mine)
	if theirs.GoAway == mine.GoAway && mine.GoAway != "" && mine.GoAway != http2.ErrCodeNo.String() {
		for _, m := range []struct{ a, b map[uint32]string }{{theirs.Reset, mine.Reset}, {theirs.Status, mine.Status}} {
			for id := range m.a {
				if _, ok := m.b[id]; !ok {
					delete(m.a, id)
				}
			}
			for id := range m.b {
				if _, ok := m.a[id]; !ok {
					delete(m.b, id)
				}
			}
		}
	}
	return cmp.Equal(theirs, mine)
}
