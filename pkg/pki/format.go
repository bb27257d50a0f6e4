package pki

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"time"
	"unicode/utf16"
)

// shortNames maps attribute type OIDs to the OpenSSL short names used in the
// slash form of a DN. Any other attribute is written as its dotted OID.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.17":                   "postalCode",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
}

// attribute is one type=value pair of a DN, already formatted. hex is the
// "#"-prefixed uppercase hex DER of the value for types without a short
// name, which the RFC 2253 form prints instead of the value.
type attribute struct{ typ, value, hex string }

// rawATV and rawRDNSET decode a DN keeping each value's DER, so values of any
// ASN.1 type can be formatted. The "SET" suffix makes encoding/asn1 expect a
// SET, as in [pkix.RelativeDistinguishedNameSET].
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rawRDNSET []rawATV

// SlashDN formats rdns in the slash form of OpenSSL's one-line DN, RDNs in
// the given (DER) order, most significant first: "/C=BR/O=Partner
// Bank/CN=partner-app". Attribute types use OpenSSL short names (C, ST, L, O,
// OU, CN, emailAddress, serialNumber, DC, UID, street, postalCode, title, GN,
// SN, initials); other types are written as dotted OIDs. The attributes of a
// multi-valued RDN are joined with "+". String values are written as decoded,
// without escaping; any other value is written as "#" followed by the
// lowercase hex of its DER encoding (best effort for values that
// encoding/asn1 could not decode). Pass the result through [HeaderSafe]
// before placing it in a header.
func SlashDN(rdns pkix.RDNSequence) string {
	out := make([][]attribute, 0, len(rdns))
	for _, rdn := range rdns {
		set := make([]attribute, 0, len(rdn))
		for _, atv := range rdn {
			typ, _ := attributeType(atv.Type)
			set = append(set, attribute{typ: typ, value: goValue(atv.Value)})
		}
		out = append(out, set)
	}
	return formatSlash(out)
}

// SubjectSlashDN formats the subject of cert as [SlashDN] does, reading the
// RDNs from the certificate's DER so their order and values are exactly
// those the issuer signed. This is the value of ssl_client_s_dn.
func SubjectSlashDN(cert *x509.Certificate) string {
	rdns, ok := parseRawDN(cert.RawSubject)
	if !ok {
		return SlashDN(cert.Subject.ToRDNSequence())
	}
	return formatSlash(rdns)
}

// IssuerSlashDN formats the issuer of cert as [SubjectSlashDN] formats the
// subject. This is the value of ssl_client_i_dn.
func IssuerSlashDN(cert *x509.Certificate) string {
	rdns, ok := parseRawDN(cert.RawIssuer)
	if !ok {
		return SlashDN(cert.Issuer.ToRDNSequence())
	}
	return formatSlash(rdns)
}

// SubjectRFC2253 formats the subject of cert in the RFC 2253 form that
// OpenSSL (and so nginx) prints, least significant RDN first:
// "CN=name,O=Example,C=US". For ordinary subjects this is what
// [pkix.Name.String] returns; unlike it, the attributes keep the
// certificate's order (reversed), multi-valued RDNs keep their "+", and the
// types use the same short names as [SlashDN]. String values of known types
// are escaped as RFC 4514 requires (and control bytes as "\XX"); values of
// dotted-OID types are "#" and the uppercase hex of their DER, as OpenSSL
// does. This is the value of ssl_client_s_dn_rfc2253.
func SubjectRFC2253(cert *x509.Certificate) string {
	rdns, ok := parseRawDN(cert.RawSubject)
	if !ok {
		return cert.Subject.String()
	}
	return formatRFC2253(rdns)
}

// IssuerRFC2253 formats the issuer of cert as [SubjectRFC2253] formats the
// subject.
func IssuerRFC2253(cert *x509.Certificate) string {
	rdns, ok := parseRawDN(cert.RawIssuer)
	if !ok {
		return cert.Issuer.String()
	}
	return formatRFC2253(rdns)
}

// parseRawDN decodes a DER Name. It fails only for bytes crypto/x509 would
// not have parsed either.
func parseRawDN(der []byte) ([][]attribute, bool) {
	var seq []rawRDNSET
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return nil, false
	}
	out := make([][]attribute, 0, len(seq))
	for _, rdn := range seq {
		set := make([]attribute, 0, len(rdn))
		for _, atv := range rdn {
			typ, known := attributeType(atv.Type)
			a := attribute{typ: typ, value: rawValue(atv.Value)}
			if !known {
				a.hex = "#" + strings.ToUpper(hex.EncodeToString(atv.Value.FullBytes))
			}
			set = append(set, a)
		}
		out = append(out, set)
	}
	return out, true
}

func formatRFC2253(rdns [][]attribute) string {
	var b strings.Builder
	// OpenSSL reverses the flat list of attributes, so the attributes of a
	// multi-valued RDN come out reversed too.
	for i := len(rdns) - 1; i >= 0; i-- {
		rdn := rdns[i]
		if i < len(rdns)-1 {
			b.WriteByte(',')
		}
		for j := len(rdn) - 1; j >= 0; j-- {
			a := rdn[j]
			if j < len(rdn)-1 {
				b.WriteByte('+')
			}
			b.WriteString(a.typ)
			b.WriteByte('=')
			if a.hex != "" {
				b.WriteString(a.hex)
			} else {
				escape2253(&b, a.value)
			}
		}
	}
	return b.String()
}

// escape2253 writes v escaped as RFC 4514 section 2.4 requires, with control
// bytes as "\XX".
func escape2253(b *strings.Builder, v string) {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			i == 0 && (c == '#' || c == ' '),
			i == len(v)-1 && c == ' ':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte('\\')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&0x0f])
		default:
			b.WriteByte(c)
		}
	}
}

func formatSlash(rdns [][]attribute) string {
	var b strings.Builder
	for _, rdn := range rdns {
		for i, a := range rdn {
			if i == 0 {
				b.WriteByte('/')
			} else {
				b.WriteByte('+')
			}
			b.WriteString(a.typ)
			b.WriteByte('=')
			b.WriteString(a.value)
		}
	}
	return b.String()
}

// attributeType returns the short name of oid, or its dotted form and false.
func attributeType(oid asn1.ObjectIdentifier) (string, bool) {
	s := oid.String()
	if name, ok := shortNames[s]; ok {
		return name, true
	}
	return s, false
}

// rawValue decodes a string-typed attribute value and writes any other value
// as "#" and the hex of its DER.
func rawValue(v asn1.RawValue) string {
	if v.Class == asn1.ClassUniversal && !v.IsCompound {
		switch v.Tag {
		case 26: // VisibleString, which encoding/asn1 does not decode.
			return string(v.Bytes)
		case asn1.TagBMPString:
			if len(v.Bytes)%2 == 0 {
				u := make([]uint16, len(v.Bytes)/2)
				for i := range u {
					u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
				}
				return string(utf16.Decode(u))
			}
		case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String,
			asn1.TagT61String, asn1.TagNumericString, asn1.TagGeneralString:
			var s any
			if _, err := asn1.Unmarshal(v.FullBytes, &s); err == nil {
				if str, ok := s.(string); ok {
					return str
				}
			}
		}
	}
	return "#" + hex.EncodeToString(v.FullBytes)
}

// goValue formats a value decoded by encoding/asn1 into an interface.
func goValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case asn1.RawValue:
		if len(v.FullBytes) == 0 {
			// Built by hand rather than decoded: encode it to get its DER.
			der, err := asn1.Marshal(v)
			if err != nil {
				return "#"
			}
			if _, err := asn1.Unmarshal(der, &v); err != nil {
				return "#"
			}
		}
		return rawValue(v)
	}
	der, err := asn1.Marshal(v)
	if err != nil {
		return "#"
	}
	return "#" + hex.EncodeToString(der)
}

// SubjectCN returns the first common name of the subject of cert, or "" if
// it has none. This is the value of ssl_client_s_dn_parsed.
func SubjectCN(cert *x509.Certificate) string {
	return cert.Subject.CommonName
}

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
func EscapedPEM(cert *x509.Certificate) string {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(data) + len(data)/8)
	for _, c := range data {
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// TimeStamp formats t in UTC as "YYYYMMDDHHmmSS", the format of
// ssl_client_v_start and ssl_client_v_end.
func TimeStamp(t time.Time) string {
	return t.UTC().Format("20060102150405")
}

// DaysRemaining returns the whole days from now until cert expires, rounded
// down: 0 in its last day, -1 in the first day after NotAfter. This is the
// value of ssl_client_v_remain.
func DaysRemaining(cert *x509.Certificate, now time.Time) int {
	const day = 24 * time.Hour
	d := cert.NotAfter.Sub(now)
	if d == time.Duration(1<<63-1) || d == time.Duration(-1<<63) {
		// Saturated: more than 292 years apart; second precision is plenty.
		secs := cert.NotAfter.Unix() - now.Unix()
		days := secs / 86400
		if secs < 0 && secs%86400 != 0 {
			days--
		}
		return int(days)
	}
	days := d / day
	if d < 0 && d%day != 0 {
		days--
	}
	return int(days)
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
func HeaderSafe(s string) string {
	if IsHeaderSafe(s) {
		return s
	}
	return string(AppendHeaderSafe(make([]byte, 0, len(s)+8), s))
}

// AppendHeaderSafe appends s to dst escaped as HeaderSafe does, without
// allocating when dst has room.
func AppendHeaderSafe(dst []byte, s string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsHeaderEscape(c) {
			dst = append(dst, '%', digits[c>>4], digits[c&0x0f])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// IsHeaderSafe reports whether HeaderSafe would return s unchanged.
func IsHeaderSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if needsHeaderEscape(s[i]) {
			return false
		}
	}
	return true
}

func needsHeaderEscape(c byte) bool {
	return c < 0x20 || c >= 0x7f
}
