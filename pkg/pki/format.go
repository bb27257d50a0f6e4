package pki

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"time"

	"github.com/edgectl/edgectl/internal/headersafe"
)

// SubjectCN returns the first common name of the subject of cert, or "" if
// it has none. This is the value of ssl_client_s_dn_parsed.
func SubjectCN(cert *x509.Certificate) string {
	// pkix.Name.CommonName keeps the last CN; OpenSSL's lookups find the
	// first.
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			if s, ok := atv.Value.(string); ok {
				return s
			}
		}
	}
	return cert.Subject.CommonName
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// SerialHex formats the serial number of cert as uppercase hex bytes joined
// by colons, without the sign-padding zero byte of DER: "01:AB:CD". A zero
// serial is "00"; a negative serial is its magnitude prefixed with "-". This
// is the value of ssl_client_serial.
func SerialHex(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	mag := cert.SerialNumber.Bytes()
	if len(mag) == 0 {
		mag = []byte{0}
	}
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	if cert.SerialNumber.Sign() < 0 {
		b.WriteByte('-')
	}
	for i, c := range mag {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
	return b.String()
}

// FingerprintSHA1 returns the SHA-1 of the DER of cert as 40 lowercase hex
// digits. This is the value of ssl_client_fingerprint.
func FingerprintSHA1(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// FingerprintSHA256 returns the SHA-256 of the DER of cert as 64 lowercase
// hex digits. This is the value of ssl_client_fingerprint_sha256.
func FingerprintSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// EscapedPEM returns the PEM encoding of cert percent-encoded on one line:
// every byte other than an RFC 3986 unreserved character (A-Z a-z 0-9 - . _
// ~) is written as "%XX" with uppercase hex, so newlines become "%0A". This
// is the value of ssl_client_escaped_cert (and of its alias ssl_client_cert).
func EscapedPEM(cert *x509.Certificate) string { return escapedPEM(cert.Raw) }

// escapedPEM writes the escaped form line by line: a PEM line is the
// base64 of 48 bytes of der, in which only '+', '/' and '=' are not
// unreserved; the BEGIN and END lines are constants. A first pass counts
// the escapes, so that the string is allocated once, at its size, with
// no buffer on the goroutine's stack beyond one line. It is the
// percent-encoding of pem.EncodeToMemory's output (FuzzEscapedPEM).
func escapedPEM(der []byte) string {
	const (
		begin = "-----BEGIN%20CERTIFICATE-----%0A"
		end   = "-----END%20CERTIFICATE-----%0A"
		chunk = 48 // bytes of der per 64-character line
	)
	var line [64]byte
	size := len(begin) + len(end)
	for rest := der; len(rest) > 0; {
		n := min(chunk, len(rest))
		l := line[:base64.StdEncoding.EncodedLen(n)]
		base64.StdEncoding.Encode(l, rest[:n])
		size += len(l) + len("%0A")
		for _, c := range l {
			if c == '+' || c == '/' || c == '=' {
				size += 2
			}
		}
		rest = rest[n:]
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(begin)
	for rest := der; len(rest) > 0; {
		n := min(chunk, len(rest))
		l := line[:base64.StdEncoding.EncodedLen(n)]
		base64.StdEncoding.Encode(l, rest[:n])
		from := 0
		for i, c := range l {
			var esc string
			switch c {
			case '+':
				esc = "%2B"
			case '/':
				esc = "%2F"
			case '=':
				esc = "%3D"
			default:
				continue
			}
			b.Write(l[from:i])
			b.WriteString(esc)
			from = i + 1
		}
		b.Write(l[from:])
		b.WriteString("%0A")
		rest = rest[n:]
	}
	b.WriteString(end)
	return b.String()
}

// RawPEM returns the PEM encoding of cert on one line: nginx's
// $ssl_client_raw_cert with each line break replaced by a space and no
// final line break, "-----BEGIN CERTIFICATE----- MIIB... ...
// -----END CERTIFICATE-----". nginx's multi-line value cannot be placed
// in a header. The base64 lines hold no spaces, so putting the line breaks
// back after the BEGIN line, before the END line and at every space in
// between gives nginx's bytes (but the final line break). This is the value
// of ssl_client_raw_cert.
func RawPEM(cert *x509.Certificate) string {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return strings.ReplaceAll(strings.TrimSuffix(string(data), "\n"), "\n", " ")
}

// ThumbprintS256 returns the base64url encoding, without padding, of the
// SHA-256 of the DER of cert: the "x5t#S256" confirmation of an OAuth 2.0
// certificate-bound access token (RFC 8705, section 3.1), which FAPI
// requires. This is the value of ssl_client_cert_thumbprint_s256.
func ThumbprintS256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// XFCC returns the client certificate as one element of Envoy's
// x-forwarded-client-cert header, with the keys in Envoy's order:
// Hash (SHA-256 of the DER, lowercase hex), Cert (the PEM percent-encoded
// as [EscapedPEM], double-quoted), Subject (the RFC 2253 form of
// [SubjectRFC2253], double-quoted, its quotes already escaped as \"), one
// URI per URI SAN ("URI=" when there is none, as Envoy) and one DNS per DNS
// SAN. A URI or DNS value holding ',', ';', '=' or '"' is double-quoted with
// '"' and '\' escaped by '\', as the documentation of Envoy's format asks
// (Envoy itself writes them bare). The By key (the
// edge's own URI SAN) is left out: edgectl's certificates need not have
// one. This is the value of ssl_client_xfcc.
func XFCC(cert *x509.Certificate) string {
	return XFCCElement(cert, FingerprintSHA256(cert), EscapedPEM(cert), SubjectRFC2253(cert))
}

// XFCCElement is [XFCC] from the parts a caller has already formatted: the
// certificate's [FingerprintSHA256], [EscapedPEM] and [SubjectRFC2253].
func XFCCElement(cert *x509.Certificate, sha256Hex, escapedPEM, subjectRFC2253 string) string {
	var b strings.Builder
	b.Grow(len(sha256Hex) + len(escapedPEM) + len(subjectRFC2253) + 64)
	b.WriteString("Hash=")
	b.WriteString(sha256Hex)
	b.WriteString(`;Cert="`)
	b.WriteString(escapedPEM)
	b.WriteString(`";Subject="`)
	b.WriteString(subjectRFC2253)
	b.WriteByte('"')
	if len(cert.URIs) == 0 {
		b.WriteString(";URI=")
	}
	for _, u := range cert.URIs {
		b.WriteString(";URI=")
		writeXFCCValue(&b, u.String())
	}
	for _, d := range cert.DNSNames {
		b.WriteString(";DNS=")
		writeXFCCValue(&b, d)
	}
	return b.String()
}

func writeXFCCValue(b *strings.Builder, v string) {
	if !strings.ContainsAny(v, `,;="`) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// TimeStamp formats t in UTC as "YYYYMMDDHHmmSS", the format of
// ssl_client_v_start and ssl_client_v_end.
func TimeStamp(t time.Time) string {
	return t.UTC().Format("20060102150405")
}

// SANDNS returns the DNS SANs of cert joined by commas, without spaces. This
// is the value of ssl_client_san_dns.
func SANDNS(cert *x509.Certificate) string {
	return strings.Join(cert.DNSNames, ",")
}

// SANURI returns the URI SANs of cert (SPIFFE IDs among them) joined by
// commas, without spaces. This is the value of ssl_client_san_uri.
func SANURI(cert *x509.Certificate) string {
	uris := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		uris[i] = u.String()
	}
	return strings.Join(uris, ",")
}

// HeaderSafe makes s safe to place in an HTTP header value: every control
// byte (0x00-0x1F, TAB included, and DEL 0x7F) and every byte of 0x80 or more
// (so non-ASCII UTF-8 too) is written as "%XX" with uppercase hex; every
// other byte, "%" included, is kept. The result is printable ASCII. "%" is
// not escaped, so HeaderSafe is idempotent but not reversible: it sanitizes,
// it does not encode.
func HeaderSafe(s string) string { return headersafe.String(s) }

// AppendHeaderSafe appends s to dst escaped as HeaderSafe does, without
// allocating when dst has room.
func AppendHeaderSafe(dst []byte, s string) []byte { return headersafe.Append(dst, s) }

// IsHeaderSafe reports whether HeaderSafe would return s unchanged.
func IsHeaderSafe(s string) bool { return headersafe.Is(s) }
