package h2_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/pkg/server/h2"
)

// testCert is a self-signed certificate for 127.0.0.1, made once per test
// binary.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "h2 test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"h2.test"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// serve serves srv over TLS (ALPN h2) on a loopback listener, as
// pkg/server does (ServeConnThen, with a Parker where there is one), and
// returns its address; the listener and srv close with the test.
func serve(t testing.TB, srv *h2.Server) string {
	t.Helper()
	if p, err := park.New(); err == nil {
		t.Cleanup(func() { p.Close() })
		srv.Parker = p
	}
	return serveWith(t, srv, func(c net.Conn) { srv.ServeConnThen(c, func(error) {}) })
}

// serveWaiting is serve with ServeConn: idle connections wait on their
// goroutines.
func serveWaiting(t testing.TB, srv *h2.Server) string {
	t.Helper()
	return serveWith(t, srv, func(c net.Conn) { srv.ServeConn(c) })
}

// waits runs f for both ways an idle connection waits on its socket:
// parked without a goroutine (serve), and on its goroutine (serveWaiting).
func waits(t *testing.T, f func(t *testing.T, serve func(testing.TB, *h2.Server) string)) {
	t.Run("parked", func(t *testing.T) { t.Parallel(); f(t, serve) })
	t.Run("goroutine", func(t *testing.T) { t.Parallel(); f(t, serveWaiting) })
}

func serveWith(t testing.TB, srv *h2.Server, serveConn func(net.Conn)) string {
	t.Helper()
	cert, _ := testCert()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, conf)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					tc.Close()
					return
				}
				tc.SetDeadline(time.Time{})
				serveConn(tc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	return ln.Addr().String()
}

// client is an x/net/http2 client of addr, one connection per request
// unless reused.
func client(t testing.TB, addr string) *http.Client {
	_, pool := testCert()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "h2.test", NextProtos: []string{"h2"}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawClient is a raw HTTP/2 client: a TLS connection and a framer, to
// send what no ordinary client would.
type rawClient struct {
	t    testing.TB
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	// settings is the server's first SETTINGS frame.
	settings map[http2.SettingID]uint32
}

// dialTLS connects with ALPN h2 and sends nothing.
func dialTLS(t testing.TB, addr string) *tls.Conn {
	t.Helper()
	_, pool := testCert()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "h2.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialRaw connects, sends the preface and settings, reads the server's
// SETTINGS and acknowledges it.
func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawClient {
	t.Helper()
	conn := dialTLS(t, addr)
	c := &rawClient{t: t, conn: conn, fr: http2.NewFramer(conn, conn), settings: map[http2.SettingID]uint32{}}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	io.WriteString(conn, http2.ClientPreface)
	c.fr.WriteSettings(settings...)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := c.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	sf.ForeachSetting(func(s http2.Setting) error { c.settings[s.ID] = s.Val; return nil })
	c.fr.WriteSettingsAck()
	return c
}

// block encodes header fields, pairs of name and value.
func (c *rawClient) block(fields ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(c.hbuf.Bytes())
}

// get opens stream id with a GET of path.
func (c *rawClient) get(id uint32, path string, extra ...string) {
	c.t.Helper()
	c.headers(id, true, append([]string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", path}, extra...)...)
}

func (c *rawClient) headers(id uint32, end bool, fields ...string) {
	c.t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(fields...), EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// event is what the server sent.
type event struct {
	kind   string // "rst", "goaway", "closed", "headers", "data", "window", "settings"
	stream uint32
	code   http2.ErrCode
	status string
	fields []hpack.HeaderField
	data   []byte
	end    bool
	incr   uint32
}

// read reads frames (answering PINGs) until stop returns true for an
// event, the connection ends, or limit passes.
func (c *rawClient) read(limit time.Duration, stop func(event) bool) []event {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(limit))
	var evs []event
	for {
		f, err := c.fr.ReadFrame()
		var ev event
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return evs
			}
			ev.kind = "closed"
			return append(evs, ev)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			ev = event{kind: "rst", stream: f.StreamID, code: f.ErrCode}
		case *http2.GoAwayFrame:
			ev = event{kind: "goaway", code: f.ErrCode, stream: f.LastStreamID}
		case *http2.MetaHeadersFrame:
			ev = event{kind: "headers", stream: f.StreamID, status: f.PseudoValue("status"), fields: f.RegularFields(), end: f.StreamEnded()}
		case *http2.DataFrame:
			ev = event{kind: "data", stream: f.StreamID, data: bytes.Clone(f.Data()), end: f.StreamEnded()}
		case *http2.WindowUpdateFrame:
			ev = event{kind: "window", stream: f.StreamID, incr: f.Increment}
		case *http2.SettingsFrame:
			ev = event{kind: "settings"}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
			continue
		default:
			continue
		}
		evs = append(evs, ev)
		if stop(ev) {
			return evs
		}
	}
}

// windowed serves size bytes to every request and sends a GET on stream 1
// of a raw connection whose streams' initial window is window bytes: the
// flow-control tests read the response as the windows let it through.
func windowed(t *testing.T, size int, window uint32) (addr string, c *rawClient) {
	t.Helper()
	addr = serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), size))
	})})
	c = dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	c.get(1, "/")
	return addr, c
}

// last returns the last event, or a zero one.
func last(evs []event) event {
	if len(evs) == 0 {
		return event{}
	}
	return evs[len(evs)-1]
}

func isEnd(ev event) bool { return ev.kind == "closed" || ev.kind == "goaway" }
