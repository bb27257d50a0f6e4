package h2_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/pkg/server/h2"
)

// benchHandler is a trivial handler: a small response with a header.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("hello, world\n"))
})

// BenchmarkStreams measures this server: requests on one TLS connection
// over loopback, 8 streams in flight at once, a trivial handler. An op is
// one request; allocs/op counts the server's and the (frugal, raw) client's.
func BenchmarkStreams(b *testing.B) {
	benchStreams(b, serve(b, &h2.Server{Handler: benchHandler}))
}

// BenchmarkStreamsXNet is BenchmarkStreams against x/net/http2's server,
// for the ratio.
func BenchmarkStreamsXNet(b *testing.B) {
	benchStreams(b, serveXNet(b, benchHandler))
}

// serveXNet serves h with x/net/http2's server over TLS on loopback.
func serveXNet(b testing.TB, h http.Handler) string {
	cert, _ := testCert()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	srv := &http2.Server{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, conf)
				if tc.Handshake() != nil {
					tc.Close()
					return
				}
				srv.ServeConn(tc, &http2.ServeConnOpts{Handler: h})
			}()
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func benchStreams(b *testing.B, addr string) {
	const inFlight = 8
	_, pool := testCert()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "h2.test", NextProtos: []string{"h2"}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.SetReuseFrames()
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h2.test"}, {":path", "/bench"}, {"user-agent", "bench"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hbuf.Bytes()
	conn.SetDeadline(time.Now().Add(time.Minute))

	id := uint32(1)
	send := func() {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
		id += 2
	}
	var received int
	read := func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				received += len(f.Data())
				if received > 1<<20 {
					fr.WriteWindowUpdate(0, uint32(received))
					received = 0
				}
				if f.StreamEnded() {
					return
				}
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					return
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				b.Fatalf("%v", f)
			}
		}
	}
	// Warm up: the workers and pools.
	for i := 0; i < inFlight; i++ {
		send()
	}
	for i := 0; i < inFlight; i++ {
		read()
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for ; sent < b.N && sent < inFlight; sent++ {
		send()
	}
	for done := 0; done < b.N; done++ {
		read()
		if sent < b.N {
			send()
			sent++
		}
	}
}
