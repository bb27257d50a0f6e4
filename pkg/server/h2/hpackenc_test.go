package h2

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2/hpack"
)

// xnetBlock encodes fields with x/net's encoder as the server used it: a
// dynamic table of size 0, the first block led by the table size update.
func xnetBlock(fields [][2]string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSize(0)
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return buf.Bytes()
}

func ourBlock(fields [][2]string) []byte {
	var e fieldEncoder
	b := e.start(nil)
	for _, f := range fields {
		b = appendField(b, f[0], f[1])
	}
	return b
}

// staticTableFields are the static table's entries (RFC 7541 appendix A),
// each name with another value, and names that are not in it.
func staticTableFields() [][2]string {
	var fields [][2]string
	for name := range staticNames {
		fields = append(fields, [2]string{name, ""}, [2]string{name, "x-value"})
	}
	for _, f := range [][2]string{
		{":method", "GET"}, {":method", "POST"}, {":path", "/"}, {":path", "/index.html"},
		{":scheme", "http"}, {":scheme", "https"}, {":status", "200"}, {":status", "204"},
		{":status", "206"}, {":status", "304"}, {":status", "400"}, {":status", "404"},
		{":status", "500"}, {":status", "201"}, {"accept-encoding", "gzip, deflate"},
		{"accept-encoding", "gzip"}, {"x-request-id", "0f8a"}, {"x-empty", ""},
	} {
		fields = append(fields, f)
	}
	return fields
}

// TestFieldEncoder: every field of the static table, and others, encode
// as x/net's encoder encodes them, and x/net's decoder reads them back.
func TestFieldEncoder(t *testing.T) {
	fields := staticTableFields()
	if got, want := ourBlock(fields), xnetBlock(fields); !bytes.Equal(got, want) {
		t.Fatalf("block differs from x/net's:\n got %x\nwant %x", got, want)
	}
	dec := hpack.NewDecoder(4096, nil)
	got, err := dec.DecodeFull(ourBlock(fields))
	if err != nil {
		t.Fatal(err)
	}
	var back [][2]string
	for _, f := range got {
		back = append(back, [2]string{f.Name, f.Value})
	}
	if d := cmp.Diff(fields, back); d != "" {
		t.Errorf("decoded (-sent +got):\n%s", d)
	}
	// A block after the first has no table size update.
	var e fieldEncoder
	e.start(nil)
	if b := appendField(e.start(nil), ":status", "200"); !bytes.Equal(b, []byte{0x88}) {
		t.Errorf("second block: %x, want 88", b)
	}
}

// FuzzFieldEncoder compares the encoder with x/net's on arbitrary fields,
// long ones included (multi-byte prefix integers, Huffman and raw).
func FuzzFieldEncoder(f *testing.F) {
	f.Add("content-type", "text/plain", "x-a", strings.Repeat("z", 200))
	f.Add(":status", "200", "date", "Tue, 08 Dec 2026 03:00:00 GMT")
	f.Add("etag", "", "x-bin", "\x00\xff\x80 é")
	f.Add(strings.Repeat("n", 300), strings.Repeat("\xfe", 130), "", "")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		fields := [][2]string{{n1, v1}, {n2, v2}, {n1, v2}}
		if got, want := ourBlock(fields), xnetBlock(fields); !bytes.Equal(got, want) {
			t.Fatalf("%q: block differs from x/net's:\n got %x\nwant %x", fields, got, want)
		}
	})
}

func BenchmarkFieldEncoder(b *testing.B) {
	fields := [][2]string{{":status", "200"}, {"content-type", "text/plain"}, {"x-echo", "edge.test"}, {"content-length", "13"}, {"date", "Tue, 08 Dec 2026 03:00:00 GMT"}}
	b.Run("edgectl", func(b *testing.B) {
		b.ReportAllocs()
		var e fieldEncoder
		var buf []byte
		for b.Loop() {
			buf = e.start(buf)
			for _, f := range fields {
				buf = appendField(buf, f[0], f[1])
			}
		}
	})
	b.Run("xnet", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		enc.SetMaxDynamicTableSize(0)
		for b.Loop() {
			buf.Reset()
			for _, f := range fields {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
		}
	})
}
