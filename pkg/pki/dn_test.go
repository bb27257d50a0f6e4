package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"unicode/utf16"

	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/google/go-cmp/cmp"
)

// attr is one attribute of a hand-built DN (see pkitest.RawName).
type attr = pkitest.Attr

func u8(oid asn1.ObjectIdentifier, s string) attr {
	return attr{OID: oid, Tag: asn1.TagUTF8String, Value: s}
}
func ps(oid asn1.ObjectIdentifier, s string) attr {
	return attr{OID: oid, Tag: asn1.TagPrintableString, Value: s}
}
func ucs2(s string) string {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return string(b)
}
func ucs4(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return string(b)
}

var (
	oidC      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN     = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidBizCat = asn1.ObjectIdentifier{2, 5, 4, 15}
	oidOrgID  = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidJurC   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}
	oidJurST  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 2}
	oidJurL   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 1}
	oidLongID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 123456789, 987654321, 123456789, 987654321, 123456789, 987654321, 123456789, 987654321, 123456789, 987654321, 1}
)

// dnGolden are names of every class the formatters handle, with what OpenSSL
// 3.0 prints for them: X509_NAME_oneline and X509_NAME_print_ex with
// XN_FLAG_RFC2253, recorded from libcrypto 3.0.19 (nginx 1.22's). They run
// without OpenSSL; TestNginxIdentityParity (pkg/cli) checks the same forms
// against nginx.
func dnGolden(t testing.TB) map[string]struct {
	der            []byte
	oneline, rfc   string
	slash, rfcEdge string // edgectl's forms where they differ
} {
	type g = struct {
		der            []byte
		oneline, rfc   string
		slash, rfcEdge string
	}
	return map[string]g{
		"plain": {der: pkitest.RawName([]attr{ps(oidC, "BR")}, []attr{u8(oidO, "Partner Bank")}, []attr{u8(oidCN, "partner-app")}),
			oneline: "/C=BR/O=Partner Bank/CN=partner-app", rfc: "CN=partner-app,O=Partner Bank,C=BR"},
		"UTF8String non-ASCII": {der: pkitest.RawName([]attr{u8(oidO, "Banco São Paulo")}, []attr{u8(oidCN, "北京😀")}),
			oneline: `/O=Banco S\xC3\xA3o Paulo/CN=\xE5\x8C\x97\xE4\xBA\xAC\xF0\x9F\x98\x80`,
			rfc:     `CN=\E5\8C\97\E4\BA\AC\F0\9F\98\80,O=Banco S\C3\A3o Paulo`},
		"T61String": {der: pkitest.RawName([]attr{{OID: oidO, Tag: asn1.TagT61String, Value: "S\xe3o"}}),
			oneline: `/O=S\xE3o`, rfc: `O=S\C3\A3o`},
		"BMPString": {der: pkitest.RawName([]attr{{OID: oidO, Tag: asn1.TagBMPString, Value: ucs2("São 日")}}),
			oneline: `/O=\x00S\x00\xE3\x00o\x00 e\xE5`, rfc: `O=S\C3\A3o \E6\97\A5`},
		"UniversalString": {der: pkitest.RawName([]attr{{OID: oidO, Tag: 28, Value: ucs4("Zé")}}),
			oneline: `/O=\x00\x00\x00Z\x00\x00\x00\xE9`, rfc: `O=Z\C3\A9`},
		"IA5String and NumericString": {der: pkitest.RawName([]attr{{OID: oidSerial, Tag: asn1.TagNumericString, Value: "0123 45"}}, []attr{{OID: oidCN, Tag: asn1.TagIA5String, Value: "ia5@x"}}),
			oneline: "/serialNumber=0123 45/CN=ia5@x", rfc: "CN=ia5@x,serialNumber=0123 45"},
		"eIDAS attributes": {der: pkitest.RawName([]attr{u8(oidOrgID, "PSDGB-FCA-123456")}, []attr{u8(oidBizCat, "Private Organization")},
			[]attr{ps(oidJurC, "GB")}, []attr{u8(oidJurST, "England")}, []attr{u8(oidJurL, "London")}),
			oneline: "/organizationIdentifier=PSDGB-FCA-123456/businessCategory=Private Organization/jurisdictionC=GB/jurisdictionST=England/jurisdictionL=London",
			rfc:     "jurisdictionL=London,jurisdictionST=England,jurisdictionC=GB,businessCategory=Private Organization,organizationIdentifier=PSDGB-FCA-123456"},
		"multi-valued RDNs": {der: pkitest.RawName([]attr{u8(oidOU, "Payments"), u8(oidSN, "b")}, []attr{u8(oidCN, "a"), u8(oidO, "c"), u8(oidC, "d")}),
			oneline: "/OU=Payments+SN=b/CN=a+O=c+C=d", rfc: "C=d+O=c+CN=a,SN=b+OU=Payments"},
		"slash and plus escaped": {der: pkitest.RawName([]attr{u8(oidO, "Partner Bank/CN=admin")}, []attr{u8(oidCN, "a+b")}),
			oneline: `/O=Partner Bank\/CN=admin/CN=a\+b`, rfc: `CN=a\+b,O=Partner Bank/CN=admin`},
		"RFC 2253 specials": {der: pkitest.RawName([]attr{u8(oidCN, `a,b+c"d\e<f>g;h=i`)}),
			oneline: `/CN=a,b\+c"d\e<f>g;h=i`, rfc: `CN=a\,b\+c\"d\\e\<f\>g\;h=i`, slash: `/CN=a,b\+c"d\x5Ce<f>g;h=i`},
		"spaces at the ends": {der: pkitest.RawName([]attr{u8(oidO, " lead and trail ")}, []attr{u8(oidCN, "end ")}),
			oneline: "/O= lead and trail /CN=end ", rfc: `CN=end\ ,O=\ lead and trail\ `,
			slash: `/O= lead and trail /CN=end\x20`, rfcEdge: `CN=end\ ,O=\ lead and trail\20`},
		"leading hash, lone characters": {der: pkitest.RawName([]attr{u8(oidO, "#x")}, []attr{u8(oidOU, "#")}, []attr{u8(oidCN, " ")}),
			oneline: "/O=#x/OU=#/CN= ", rfc: `CN=\ ,OU=#,O=\#x`, slash: `/O=#x/OU=#/CN=\x20`},
		"empty values": {der: pkitest.RawName([]attr{ps(oidO, "")}, []attr{u8(oidCN, "")}),
			oneline: "/O=/CN=", rfc: "CN=,O="},
		"control characters": {der: pkitest.RawName([]attr{u8(oidCN, "a\x01b\tc\r\nd\x7f")}),
			oneline: `/CN=a\x01b\x09c\x0D\x0Ad\x7F`, rfc: `CN=a\01b\09c\0D\0Ad\7F`},
		// OpenSSL cuts a dotted OID at 79 characters.
		"unknown OIDs": {der: pkitest.RawName([]attr{u8(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, "custom")}, []attr{ps(oidLongID, "x")}),
			oneline: "/1.3.6.1.4.1.55555.1=custom/1.3.6.1.4.1.55555.123456789.987654321.123456789.987654321.123456789.987654321.1=x",
			rfc:     "1.3.6.1.4.1.55555.123456789.987654321.123456789.987654321.123456789.987654321.1=#130178,1.3.6.1.4.1.55555.1=#0C06637573746F6D"},
		"backslash before an RDN": {der: pkitest.RawName([]attr{u8(oidO, `a\`)}, []attr{u8(oidCN, "b")}),
			oneline: `/O=a\/CN=b`, rfc: `CN=b,O=a\\`, slash: `/O=a\x5C/CN=b`},
		"empty name": {der: pkitest.RawName(), oneline: "", rfc: ""},
	}
}

func TestDNGolden(t *testing.T) {
	for name, tt := range dnGolden(t) {
		t.Run(name, func(t *testing.T) {
			one, err := opensslOnelineDN(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			rfc, err := opensslRFC2253DN(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			wantSlash, wantRFC := tt.oneline, tt.rfc
			if tt.slash != "" {
				wantSlash = tt.slash
			}
			if tt.rfcEdge != "" {
				wantRFC = tt.rfcEdge
			}
			got := []string{one, rfc, slashDN(tt.der), rfc2253DN(tt.der)}
			if diff := cmp.Diff([]string{tt.oneline, tt.rfc, wantSlash, wantRFC}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// The forms below are OpenSSL's own, without edgectl's header-safe
// differences, which the tests compare with the openssl command.

// opensslOnelineDN formats a DER Name exactly as OpenSSL 3's X509_NAME_oneline
// does, the form of nginx's $ssl_client_s_dn_legacy:
// "/C=BR/O=Partner Bank/CN=partner-app". See [SubjectSlashDN] for the form
// edgectl places in headers.
func opensslOnelineDN(der []byte) (string, error) {
	entries, err := parseName(der)
	if err != nil {
		return "", err
	}
	return opensslOneline(entries, false), nil
}

// opensslRFC2253DN formats a DER Name exactly as OpenSSL 3's
// X509_NAME_print_ex with XN_FLAG_RFC2253 does, the form of nginx's
// $ssl_client_s_dn: "CN=partner-app,O=Partner Bank,C=BR". See
// [SubjectRFC2253] for the form edgectl places in headers.
func opensslRFC2253DN(der []byte) (string, error) {
	entries, err := parseName(der)
	if err != nil {
		return "", err
	}
	return opensslRFC2253(entries), nil
}

// slashDNOf formats rdns in the slash form of [SubjectSlashDN]. Go's encoding
// of rdns decides the string types (PrintableString where it can,
// UTF8String otherwise).
func slashDNOf(rdns pkix.RDNSequence) string {
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return ""
	}
	return slashDN(der)
}
