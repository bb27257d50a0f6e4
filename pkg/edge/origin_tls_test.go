package edge_test

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestHTTPSOrigin: an https origin is verified with its own CA bundle and
// server name; without them the edge refuses it (502), never skipping
// verification silently.
func TestHTTPSOrigin(t *testing.T) {
	t.Parallel()
	o := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("tls origin"))
	}))
	t.Cleanup(o.Close) // after the parallel subtests
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.Certificate().Raw}))
	for name, tc := range map[string]struct {
		tls    *manifest.OriginTLS
		status int
	}{
		"own CA and server name": {&manifest.OriginTLS{CA: caPEM, ServerName: "example.com"}, 200},
		"own CA, IP in the URL":  {&manifest.OriginTLS{CA: caPEM}, 200},
		"system roots":           {nil, 502},
		"wrong server name":      {&manifest.OriginTLS{CA: caPEM, ServerName: "other.example"}, 502},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			snap := snapshotFor(p, o.URL)
			snap.Resources[2].Spec.(*manifest.ApplicationSpec).Origin.TLS = tc.tls
			e := serveSnapshot(t, p, snap)
			if got := e.do(t, "api.bank.test", "valid", tls.VersionTLS13, "", nil); got.status != tc.status {
				t.Fatalf("want %d, got %+v", tc.status, got)
			}
		})
	}
}

// splitConn cuts the first TLS record the client writes (its ClientHello)
// into records of at most n bytes of payload, as a middlebox or an
// attacker may.
type splitConn struct {
	net.Conn
	n    int
	done bool
}

func (c *splitConn) Write(b []byte) (int, error) {
	if c.done || len(b) < 5 || b[0] != 22 {
		return c.Conn.Write(b)
	}
	c.done = true
	length := int(b[3])<<8 | int(b[4])
	if len(b) < 5+length {
		return c.Conn.Write(b)
	}
	payload := b[5 : 5+length]
	var out []byte
	for len(payload) > 0 {
		k := min(c.n, len(payload))
		out = append(out, 22, b[1], b[2], byte(k>>8), byte(k))
		out = append(out, payload[:k]...)
		payload = payload[k:]
	}
	if _, err := c.Conn.Write(append(out, b[5+length:]...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// TestClientHelloSplitAcrossRecords: SNI is read from a ClientHello spread
// over several records, and the domain's policy still applies.
func TestClientHelloSplitAcrossRecords(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	for _, tc := range []struct {
		sni, client string
		wantStatus  int
	}{
		{"api.bank.test", "valid", 200},
		{"api.bank.test", "", 0}, // Enforce still refuses
		{"portal.bank.test", "", 403},
	} {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{ServerName: tc.sni, RootCAs: e.p.edgeRoot.Pool(), NextProtos: []string{"http/1.1"}}
		if c := e.p.clients[tc.client]; c != nil {
			cert := c.TLSCertificate()
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		sc := &splitConn{Conn: raw, n: 40}
		conn := tls.Client(sc, cfg)
		status := 0
		req, _ := http.NewRequest("GET", "https://"+tc.sni+"/", nil)
		if err := req.Write(conn); err == nil {
			if resp, err := http.ReadResponse(bufioReader(conn), req); err == nil {
				status = resp.StatusCode
			}
		}
		conn.Close()
		if !sc.done {
			t.Fatal("the ClientHello was not split; the test proves nothing")
		}
		if status != tc.wantStatus {
			t.Errorf("%s with %q: status %d, want %d", tc.sni, tc.client, status, tc.wantStatus)
		}
	}
}
