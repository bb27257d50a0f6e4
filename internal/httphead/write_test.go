package httphead

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestWriteField writes field lines that fit the buffer's free space, that
// do not, and that fill it exactly, among others, and compares the bytes
// with four WriteStrings per line.
func TestWriteField(t *testing.T) {
	fields := [][2]string{
		{"Host", "edge.test"}, {"X-Long", strings.Repeat("v", 100)}, {"Empty", ""},
		{"X-Fill", strings.Repeat("f", 44)}, {"Ssl-Client-Cert", strings.Repeat("%2F", 500)},
		{"A", "b"},
	}
	for size := 16; size <= 2048; size += 7 {
		var got, want bytes.Buffer
		g, w := bufio.NewWriterSize(&got, size), bufio.NewWriterSize(&want, size)
		for _, f := range fields {
			WriteField(g, f[0], f[1])
			w.WriteString(f[0])
			w.WriteString(": ")
			w.WriteString(f[1])
			w.WriteString("\r\n")
		}
		g.Flush()
		w.Flush()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("buffer of %d: got %q, want %q", size, got.Bytes(), want.Bytes())
		}
	}
}

func BenchmarkWriteField(b *testing.B) {
	fields := [][2]string{
		{"Host", "edge.test"}, {"User-Agent", "loadgen/1"}, {"Accept-Encoding", "gzip"},
		{"X-Forwarded-For", "127.0.0.1"}, {"X-Forwarded-Host", "edge.test"}, {"X-Forwarded-Proto", "https"},
		{"Ssl-Client-S-Dn", "CN=client,O=Partner"}, {"Ssl-Client-Verify", "SUCCESS"},
		{"Ssl-Client-Cert", strings.Repeat("%2F", 400)}, {"Content-Type", "text/plain"},
	}
	for _, bc := range []struct {
		name  string
		write func(bw *bufio.Writer, k, v string)
	}{
		{"WriteField", WriteField},
		{"WriteString", func(bw *bufio.Writer, k, v string) {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(nil, 4096)
			for b.Loop() {
				bw.Reset(discard{})
				for _, f := range fields {
					bc.write(bw, f[0], f[1])
				}
				bw.Flush()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
