package h1

import "testing"

// TestHeaderScan checks what the scanner reports for each request, fed
// whole and split in two at every byte: the connection may deliver the
// header in any pieces.
func TestHeaderScan(t *testing.T) {
	type result struct {
		done, obsFold, badHost, emptyRL, atLeast11, supported bool
		hosts, lengths, encodings                             int
	}
	tests := []struct {
		name, raw string
		want      result
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: a.test:8443\r\n\r\nbody", result{done: true, hosts: 1, atLeast11: true}},
		{"bare LF", "GET / HTTP/1.0\nHost: a\n\n", result{done: true, hosts: 1}},
		{"CL and TE", "POST / HTTP/1.1\r\nhost: a\r\nCONTENT-LENGTH: 3\r\ntransfer-encoding:  Chunked \r\n\r\n", result{done: true, hosts: 1, lengths: 1, encodings: 1, atLeast11: true, supported: true}},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", result{done: true, hosts: 1, encodings: 1, atLeast11: true}},
		{"TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", result{done: true, hosts: 1, encodings: 2, atLeast11: true}},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", result{done: true, hosts: 1, obsFold: true, atLeast11: true}},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", result{done: true, hosts: 1, obsFold: true, atLeast11: true}},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", result{done: true, hosts: 1, badHost: true, atLeast11: true}},
		{"Host with a CR inside", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", result{done: true, hosts: 1, badHost: true, atLeast11: true}},
		{"Host with a bad byte", "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", result{done: true, hosts: 1, badHost: true, atLeast11: true}},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", result{done: true, hosts: 1, atLeast11: true}},
		{"no Host, absolute form", "GET http://a/ HTTP/1.1\r\n\r\n", result{done: true, atLeast11: true}},
		{"a name like Host", "GET / HTTP/1.1\r\nHosts: a\r\nX-Host: b\r\n\r\n", result{done: true, atLeast11: true}},
		{"empty request line", "\r\nGET / HTTP/1.1\r\n\r\n", result{done: true, emptyRL: true}},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", result{done: true, atLeast11: true}},
		{"unfinished", "GET / HTTP/1.1\r\nHost: a\r\n", result{hosts: 1, atLeast11: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for split := 0; split <= len(tt.raw); split++ {
				var s headerScan
				s.feed([]byte(tt.raw[:split]))
				s.feed([]byte(tt.raw[split:]))
				got := result{s.done, s.obsFold, s.badHost, s.emptyRL, s.atLeast11(), s.encodingSupported(), s.hosts, s.lengths, s.encodings}
				if got != tt.want {
					t.Fatalf("split at %d: %+v, want %+v", split, got, tt.want)
				}
			}
		})
	}
}

// BenchmarkHeaderScan measures the scanner on the request of
// BenchmarkKeepAlive: its cost per request.
func BenchmarkHeaderScan(b *testing.B) {
	req := []byte("GET /v1/accounts?x=1 HTTP/1.1\r\nHost: api.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		var s headerScan
		s.feed(req)
	}
}
