package edge_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkServeKeepAlive measures one request through the whole edge —
// TLS record layer, Host/SNI check, header sanitation, firewall, request
// rules with three identity headers, reverse proxy to a loopback origin,
// response rules — over one persistent mTLS connection (Enforce).
func BenchmarkServeKeepAlive(b *testing.B) { benchKeepAlive(b, "GET", nil) }

// BenchmarkServeKeepAlivePost is BenchmarkServeKeepAlive with a 16 KiB
// request body, which the edge streams to the origin.
func BenchmarkServeKeepAlivePost(b *testing.B) {
	benchKeepAlive(b, "POST", bytes.Repeat([]byte("x"), 16<<10))
}

// benchKeepAlive sends requests with body on one persistent mTLS
// connection through the whole pipeline.
func benchKeepAlive(b *testing.B, method string, body []byte) {
	e := startEdgeB(b)
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	cert := e.p.clients["valid"].TLSCertificate()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, _ := http.NewRequest(method, "https://api.bank.test/accounts", nil)
	req.ContentLength = int64(len(body))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := req.Write(conn); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkServeH2 is BenchmarkServeKeepAlive over HTTP/2: one request
// at a time, and 8 streams at once on one connection, as the bench
// harness's h2 mode sends them. Allocations include the client's.
func BenchmarkServeH2(b *testing.B) {
	for _, streams := range []int{1, 8} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			e := startEdgeB(b)
			cc := e.h2Conn(b)
			get := func() {
				req, _ := http.NewRequest("GET", "https://api.bank.test/accounts", nil)
				resp, err := cc.RoundTrip(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
			get() // the connection's first request
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) && !b.Failed() {
						get()
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkFullHandshake measures a full mTLS handshake plus one request
// (Enforce), as the bench harness's handshake mode does.
func BenchmarkFullHandshake(b *testing.B) {
	e := startEdgeB(b)
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	cert := e.p.clients["valid"].TLSCertificate()
	cfg := &tls.Config{ServerName: "api.bank.test", RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, SessionTicketsDisabled: true}
	req, _ := http.NewRequest("GET", "https://api.bank.test/accounts", nil)
	req.Close = true
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn, err := tls.Dial("tcp", e.addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		req.Write(conn)
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		conn.Close()
	}
}
