package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"sort"
	"strings"
)

//go:generate go run gen_oids.go

// nameEntry is one attribute of a DER Name, as OpenSSL's X509_NAME holds it.
type nameEntry struct {
	oid asn1.ObjectIdentifier
	// set is the index of the entry's RDN: entries of one multi-valued RDN
	// share it.
	set int
	// class, tag and compound describe the value's ASN.1 encoding.
	class, tag int
	compound   bool
	// content is the value's content octets; der its whole encoding.
	content, der []byte
}

// rawATV and rawRDNSET decode a DN keeping each value's DER, so values of any
// ASN.1 type can be formatted. The "SET" suffix makes encoding/asn1 expect a
// SET, as in [pkix.RelativeDistinguishedNameSET].
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rawRDNSET []rawATV

// parseName decodes a DER Name into its entries, in DER order.
func parseName(der []byte) ([]nameEntry, error) {
	var seq []rawRDNSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("invalid DER name: %w", err)
	}
	if len(rest) > 0 {
		return nil, errors.New("invalid DER name: trailing data")
	}
	var out []nameEntry
	for i, rdn := range seq {
		for _, atv := range rdn {
			v := atv.Value
			out = append(out, nameEntry{oid: atv.Type, set: i, class: v.Class, tag: v.Tag,
				compound: v.IsCompound, content: v.Bytes, der: v.FullBytes})
		}
	}
	return out, nil
}

// attrName is the name OpenSSL prints for an attribute type: its short name
// from OpenSSL's object table, or the dotted OID (at most 79 characters, the
// size of OpenSSL's buffer) and false for a type the table lacks.
func attrName(oid asn1.ObjectIdentifier) (string, bool) {
	s := oid.String()
	if sn, ok := opensslShortNames[s]; ok {
		return sn, true
	}
	if len(s) > 79 {
		s = s[:79]
	}
	return s, false
}

const upperHex = "0123456789ABCDEF"

// onelineValue returns the bytes X509_NAME_oneline prints for a value: the
// content octets of a string, the whole encoding of a SEQUENCE or SET.
func (e *nameEntry) onelineValue() []byte {
	if e.class == asn1.ClassUniversal && (e.tag == asn1.TagSequence || e.tag == asn1.TagSet) {
		return e.der
	}
	return e.content
}

// opensslOneline formats entries exactly as OpenSSL 3's X509_NAME_oneline:
// "/type=value" per RDN in DER order, "+type=value" for the further values of
// a multi-valued RDN, "/" and "+" inside values escaped with "\", and bytes
// outside printable ASCII (controls, DEL, 0x80 and above) as "\xXX". A
// GeneralString whose length is a multiple of four and whose bytes are zero
// but every fourth is printed as that fourth byte, as OpenSSL does.
// escapeBackslash also writes "\" as "\x5C", which OpenSSL does not.
func opensslOneline(entries []nameEntry, escapeBackslash bool) string {
	var b strings.Builder
	prev := -1
	for i := range entries {
		e := &entries[i]
		if prev == e.set {
			b.WriteByte('+')
		} else {
			b.WriteByte('/')
		}
		prev = e.set
		name, _ := attrName(e.oid)
		b.WriteString(name)
		b.WriteByte('=')
		q := e.onelineValue()
		only4th := false
		if e.class == asn1.ClassUniversal && e.tag == asn1.TagGeneralString && len(q)%4 == 0 {
			only4th = true
			for j, c := range q {
				if j&3 != 3 && c != 0 {
					only4th = false
					break
				}
			}
		}
		for j, c := range q {
			if only4th && j&3 != 3 {
				continue
			}
			switch {
			case c < ' ' || c > '~' || escapeBackslash && c == '\\':
				b.WriteString(`\x`)
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&0x0f])
			case c == '/' || c == '+':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// charWidth is OpenSSL's tag2nbyte: the bytes per character of the string
// types X509_NAME_print_ex decodes (0 for UTF8String, read byte by byte), or
// -1 for a value it dumps as hex.
func charWidth(e *nameEntry) int {
	if e.class != asn1.ClassUniversal || e.compound {
		return -1
	}
	switch e.tag {
	case asn1.TagUTF8String:
		return 0
	case asn1.TagNumericString, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String,
		asn1.TagUTCTime, asn1.TagGeneralizedTime, 26: // 26: VisibleString (ISO646String)
		return 1
	case 28: // UniversalString
		return 4
	case asn1.TagBMPString:
		return 2
	}
	return -1
}

// opensslRFC2253 formats entries exactly as OpenSSL 3's X509_NAME_print_ex
// with XN_FLAG_RFC2253: entries in reverse order, "," between RDNs and "+"
// inside one, short names from OpenSSL's table, values of attribute types
// the table lacks and values that are not strings as "#" and the uppercase
// hex of their DER; string values converted to UTF-8 and escaped as
// ASN1_STRFLGS_RFC2253 does: ",+\"\\<>;" with "\", "#" or " " first and " "
// last with "\", controls and every byte of 0x80 or more as "\XX".
func opensslRFC2253(entries []nameEntry) string {
	var b strings.Builder
	prev := -1
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		if prev != -1 {
			if prev == e.set {
				b.WriteByte('+')
			} else {
				b.WriteByte(',')
			}
		}
		prev = e.set
		name, known := attrName(e.oid)
		b.WriteString(name)
		b.WriteByte('=')
		width := charWidth(e)
		if !known || width < 0 || !writeRFC2253Value(&b, e.content, width) {
			b.WriteByte('#')
			for _, c := range e.der {
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&0x0f])
			}
		}
	}
	return b.String()
}

// writeRFC2253Value writes a string value of the given character width as
// OpenSSL's do_buf does with the RFC 2253 flags. It reports false, writing
// nothing, for a length that is not a multiple of the width (OpenSSL fails
// there; edgectl dumps the value instead).
func writeRFC2253Value(b *strings.Builder, s []byte, width int) bool {
	if width > 1 && len(s)%width != 0 {
		return false
	}
	conv := width != 0 // UTF8String is read byte by byte, without conversion.
	if width == 0 {
		width = 1
	}
	var utf [4]byte
	for p := 0; p < len(s); p += width {
		var c uint32
		for k := 0; k < width; k++ {
			c = c<<8 | uint32(s[p+k])
		}
		first, last := p == 0, p+width == len(s)
		if last {
			first = false // OpenSSL replaces the "first" flag with "last".
		}
		if !conv {
			escape2253(b, byte(c), first, last)
			continue
		}
		n := putUTF8(utf[:], c)
		for k := 0; k < n; k++ {
			escape2253(b, utf[k], first, last)
		}
	}
	return true
}

// putUTF8 encodes c as OpenSSL 3's UTF8_putc does, returning 0 (nothing
// written) for a surrogate or a value beyond U+10FFFF.
func putUTF8(p []byte, c uint32) int {
	switch {
	case c < 0x80:
		p[0] = byte(c)
		return 1
	case c < 0x800:
		p[0], p[1] = 0xc0|byte(c>>6), 0x80|byte(c&0x3f)
		return 2
	case c < 0x10000:
		if c >= 0xd800 && c <= 0xdfff {
			return 0
		}
		p[0], p[1], p[2] = 0xe0|byte(c>>12), 0x80|byte(c>>6&0x3f), 0x80|byte(c&0x3f)
		return 3
	case c < 0x110000:
		p[0], p[1], p[2], p[3] = 0xf0|byte(c>>18), 0x80|byte(c>>12&0x3f), 0x80|byte(c>>6&0x3f), 0x80|byte(c&0x3f)
		return 4
	}
	return 0
}

// escape2253 writes one byte as OpenSSL's do_esc_char does with the RFC 2253
// flags.
func escape2253(b *strings.Builder, c byte, first, last bool) {
	switch {
	case c > 0x7f || c < 0x20 || c == 0x7f:
		b.WriteByte('\\')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	case strings.IndexByte(`,+"\<>;`, c) >= 0,
		first && (c == '#' || c == ' '),
		last && c == ' ':
		b.WriteByte('\\')
		b.WriteByte(c)
	default:
		b.WriteByte(c)
	}
}

// OpenSSLOneline formats a DER Name exactly as OpenSSL 3's X509_NAME_oneline
// does, the form of nginx's $ssl_client_s_dn_legacy:
// "/C=BR/O=Partner Bank/CN=partner-app". See [SubjectSlashDN] for the form
// edgectl places in headers.
func OpenSSLOneline(der []byte) (string, error) {
	entries, err := parseName(der)
	if err != nil {
		return "", err
	}
	return opensslOneline(entries, false), nil
}

// OpenSSLRFC2253 formats a DER Name exactly as OpenSSL 3's
// X509_NAME_print_ex with XN_FLAG_RFC2253 does, the form of nginx's
// $ssl_client_s_dn: "CN=partner-app,O=Partner Bank,C=BR". See
// [SubjectRFC2253] for the form edgectl places in headers.
func OpenSSLRFC2253(der []byte) (string, error) {
	entries, err := parseName(der)
	if err != nil {
		return "", err
	}
	return opensslRFC2253(entries), nil
}

// slashDN is the slash form edgectl gives: OpenSSL's one-line form with "\"
// written as "\x5C" (OpenSSL leaves it bare, so "O=a\" followed by "CN=b"
// and "O=a/CN=b" print the same) and a trailing space as "\x20" (an HTTP
// hop trims it).
func slashDN(der []byte) string {
	entries, err := parseName(der)
	if err != nil {
		return ""
	}
	s := opensslOneline(entries, true)
	if strings.HasSuffix(s, " ") {
		s = s[:len(s)-1] + `\x20`
	}
	return s
}

// rfc2253DN is the RFC 2253 form edgectl gives: OpenSSL's, with a final
// escaped space "\ " written as "\20" (an HTTP hop would trim the space and
// leave a lone "\").
func rfc2253DN(der []byte) string {
	entries, err := parseName(der)
	if err != nil {
		return ""
	}
	s := opensslRFC2253(entries)
	if strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-2] + `\20`
	}
	return s
}

// SlashDN formats rdns in the slash form of [SubjectSlashDN]. Go's encoding
// of rdns decides the string types (PrintableString where it can,
// UTF8String otherwise).
func SlashDN(rdns pkix.RDNSequence) string {
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return ""
	}
	return slashDN(der)
}

// SubjectSlashDN formats the subject of cert as OpenSSL 3's
// X509_NAME_oneline does, byte for byte (RDNs in DER order, most significant
// first: "/C=BR/O=Partner Bank/CN=partner-app"; "/" and "+" inside values
// escaped with "\"; bytes outside printable ASCII as "\xXX"; attribute types
// by OpenSSL's short names, unknown ones as dotted OIDs; the attributes of a
// multi-valued RDN joined by "+"), with two deliberate differences that
// make it unambiguous and header-safe: a "\" inside a value is written
// "\x5C", and a space ending the whole DN "\x20". The result is printable
// ASCII. This is the value of ssl_client_s_dn.
func SubjectSlashDN(cert *x509.Certificate) string { return slashDN(cert.RawSubject) }

// IssuerSlashDN formats the issuer of cert as [SubjectSlashDN] formats the
// subject. This is the value of ssl_client_i_dn.
func IssuerSlashDN(cert *x509.Certificate) string { return slashDN(cert.RawIssuer) }

// SubjectRFC2253 formats the subject of cert as OpenSSL 3's
// X509_NAME_print_ex with XN_FLAG_RFC2253 does, byte for byte (RDNs in
// reverse order: "CN=partner-app,O=Partner Bank,C=BR"; RFC 2253 specials,
// controls and UTF-8 bytes escaped with "\"; values of types OpenSSL does
// not know as "#" and hex DER), except that a space ending the whole DN is
// written "\20" rather than "\ ", which an HTTP hop would cut in half. The
// result is printable ASCII. This is the value of ssl_client_s_dn_rfc2253.
func SubjectRFC2253(cert *x509.Certificate) string { return rfc2253DN(cert.RawSubject) }

// IssuerRFC2253 formats the issuer of cert as [SubjectRFC2253] formats the
// subject. This is the value of ssl_client_i_dn_rfc2253.
func IssuerRFC2253(cert *x509.Certificate) string { return rfc2253DN(cert.RawIssuer) }

// OpenSSLObject is one entry of OpenSSL's object table.
type OpenSSLObject struct {
	// OID is the dotted object identifier.
	OID string
	// ShortName is OpenSSL's short name, as X509_NAME_oneline prints it.
	ShortName string
	// LongName is OpenSSL's long name (the short name when the table
	// gives none).
	LongName string
}

// ParseOpenSSLObjects reads the output of `openssl list -objects` ("SN = LN,
// OID" or "SN = OID" per line; comment lines for objects without an OID)
// into its objects with an OID, sorted by OID.
func ParseOpenSSLObjects(out string) ([]OpenSSLObject, error) {
	var objs []OpenSSLObject
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sn, rest, ok := strings.Cut(line, " = ")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not \"SN = LN, OID\"", n+1, line)
		}
		oid, ln := rest, sn
		if i := strings.LastIndex(rest, ", "); i >= 0 {
			oid, ln = rest[i+2:], rest[:i]
		}
		if !isDottedOID(oid) {
			return nil, fmt.Errorf("line %d: %q does not end with an OID", n+1, line)
		}
		objs = append(objs, OpenSSLObject{OID: oid, ShortName: sn, LongName: ln})
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].OID < objs[j].OID })
	return objs, nil
}

func isDottedOID(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
