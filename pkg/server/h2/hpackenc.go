package h2

import "golang.org/x/net/http2/hpack"

// fieldEncoder encodes response header fields in HPACK (RFC 7541) without
// the dynamic table, as nginx encodes them: a field that is in the static
// table whole is sent as its index, any other as a literal "without
// indexing", its name as a static index when the table has the name. So
// neither end keeps the response fields of a connection, and encoding
// needs no state beyond the table size update that the first header
// block of the connection starts with (the client's decoder starts with a
// 4,096-byte table; this tells it the encoder uses none).
//
// The bytes are the ones x/net's hpack.Encoder writes with a dynamic
// table of size 0 (FuzzFieldEncoder compares them), without its search of
// the static table through maps keyed by name and value, its copy of each
// field into its own buffer and the Write of that buffer per field.
type fieldEncoder struct {
	sizeSent bool // the table size update went out in a header block
}

// start begins a header block in dst[:0].
func (e *fieldEncoder) start(dst []byte) []byte {
	dst = dst[:0]
	if !e.sizeSent {
		e.sizeSent = true
		dst = append(dst, 0x20) // dynamic table size update: 0
	}
	return dst
}

// appendField appends one field (name in lower case).
func appendField(dst []byte, name, value string) []byte {
	if i := staticField(name, value); i != 0 {
		return appendPrefixInt(dst, 0x80, 7, uint64(i)) // indexed field
	}
	if i := staticNames[name]; i != 0 {
		// Literal without indexing, the name as an index (4-bit prefix).
		dst = appendPrefixInt(dst, 0x00, 4, uint64(i))
	} else {
		dst = append(dst, 0x00) // literal without indexing, new name
		dst = appendString(dst, name)
	}
	return appendString(dst, value)
}

// appendString appends s as an HPACK string literal: Huffman-coded when
// that is shorter.
func appendString(dst []byte, s string) []byte {
	if n := hpack.HuffmanEncodeLength(s); n < uint64(len(s)) {
		dst = appendPrefixInt(dst, 0x80, 7, n)
		return hpack.AppendHuffmanString(dst, s)
	}
	dst = appendPrefixInt(dst, 0x00, 7, uint64(len(s)))
	return append(dst, s...)
}

// appendPrefixInt appends i as an integer with an n-bit prefix (RFC 7541
// section 5.1), the first byte's other bits set to flags.
func appendPrefixInt(dst []byte, flags byte, n uint, i uint64) []byte {
	max := uint64(1)<<n - 1
	if i < max {
		return append(dst, flags|byte(i))
	}
	dst = append(dst, flags|byte(max))
	for i -= max; i >= 0x80; i >>= 7 {
		dst = append(dst, byte(i&0x7f)|0x80)
	}
	return append(dst, byte(i))
}

// staticField returns the static table's index of the field name: value,
// or 0. Five names have entries with values; every other name of the
// table, and :authority and accept-charset, has one entry, with an empty
// value.
func staticField(name, value string) uint8 {
	switch name {
	case ":status":
		switch value {
		case "200":
			return 8
		case "204":
			return 9
		case "206":
			return 10
		case "304":
			return 11
		case "400":
			return 12
		case "404":
			return 13
		case "500":
			return 14
		}
	case ":method":
		switch value {
		case "GET":
			return 2
		case "POST":
			return 3
		}
	case ":path":
		switch value {
		case "/":
			return 4
		case "/index.html":
			return 5
		}
	case ":scheme":
		switch value {
		case "http":
			return 6
		case "https":
			return 7
		}
	case "accept-encoding":
		if value == "gzip, deflate" {
			return 16
		}
	default:
		if value == "" {
			return staticNames[name]
		}
	}
	return 0
}

// staticNames indexes the names of the static table (RFC 7541 appendix
// A); a name with several entries maps to its last, as x/net's table does.
var staticNames = map[string]uint8{
	":authority": 1, ":method": 3, ":path": 5, ":scheme": 7, ":status": 14,
	"accept-charset": 15, "accept-encoding": 16, "accept-language": 17, "accept-ranges": 18,
	"accept": 19, "access-control-allow-origin": 20, "age": 21, "allow": 22, "authorization": 23,
	"cache-control": 24, "content-disposition": 25, "content-encoding": 26, "content-language": 27,
	"content-length": 28, "content-location": 29, "content-range": 30, "content-type": 31,
	"cookie": 32, "date": 33, "etag": 34, "expect": 35, "expires": 36, "from": 37, "host": 38,
	"if-match": 39, "if-modified-since": 40, "if-none-match": 41, "if-range": 42,
	"if-unmodified-since": 43, "last-modified": 44, "link": 45, "location": 46, "max-forwards": 47,
	"proxy-authenticate": 48, "proxy-authorization": 49, "range": 50, "referer": 51, "refresh": 52,
	"retry-after": 53, "server": 54, "set-cookie": 55, "strict-transport-security": 56,
	"transfer-encoding": 57, "user-agent": 58, "vary": 59, "via": 60, "www-authenticate": 61,
}
