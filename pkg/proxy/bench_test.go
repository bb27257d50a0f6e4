package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures one exchange with a pooled loopback origin,
// under a context that cannot be cancelled and under one that can (the
// exchange then watches it, to close the connection when it is
// cancelled), with and without the connection limit.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name     string
		ctx      context.Context
		maxConns int
	}{
		{"background", context.Background(), 0},
		{"cancellable", cancellable, 0},
		{"cancellable-limited", cancellable, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: 5 * time.Second, MaxConns: bc.maxConns, MaxQueue: 64, QueueTimeout: time.Second})
			defer o.Close()
			r := httptest.NewRequest("GET", "https://edge.example/x", nil)
			w := &discardWriter{h: http.Header{}}
			out := &Outbound{}
			b.ReportAllocs()
			for b.Loop() {
				x, err := o.RoundTrip(bc.ctx, r, out)
				if err != nil {
					b.Fatal(err)
				}
				keep, _ := x.Relay(w)
				x.Release(keep)
				clear(w.h)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}
