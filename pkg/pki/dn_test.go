package pki

import (
	"encoding/asn1"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
)

// attr is one attribute of a hand-built DN: type, ASN.1 string tag and the
// value's bytes.
type attr struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

// buildName encodes RDNs of attributes as a DER Name, string types as given
// (crypto/x509 would choose its own).
func buildName(t testing.TB, rdns ...[]attr) []byte {
	t.Helper()
	var seq []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, Bytes: []byte(a.value)})
			if err != nil {
				t.Fatal(err)
			}
			oid, err := asn1.Marshal(a.oid)
			if err != nil {
				t.Fatal(err)
			}
			atv, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(oid, val...)})
			set = append(set, atv...)
		}
		s, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: set})
		seq = append(seq, s...)
	}
	der, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: seq})
	return der
}

func u8(oid asn1.ObjectIdentifier, s string) attr { return attr{oid, asn1.TagUTF8String, s} }
func ps(oid asn1.ObjectIdentifier, s string) attr { return attr{oid, asn1.TagPrintableString, s} }
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
		"plain": {der: buildName(t, []attr{ps(oidC, "BR")}, []attr{u8(oidO, "Partner Bank")}, []attr{u8(oidCN, "partner-app")}),
			oneline: "/C=BR/O=Partner Bank/CN=partner-app", rfc: "CN=partner-app,O=Partner Bank,C=BR"},
		"UTF8String non-ASCII": {der: buildName(t, []attr{u8(oidO, "Banco São Paulo")}, []attr{u8(oidCN, "北京😀")}),
			oneline: `/O=Banco S\xC3\xA3o Paulo/CN=\xE5\x8C\x97\xE4\xBA\xAC\xF0\x9F\x98\x80`,
			rfc:     `CN=\E5\8C\97\E4\BA\AC\F0\9F\98\80,O=Banco S\C3\A3o Paulo`},
		"T61String": {der: buildName(t, []attr{{oidO, asn1.TagT61String, "S\xe3o"}}),
			oneline: `/O=S\xE3o`, rfc: `O=S\C3\A3o`},
		"BMPString": {der: buildName(t, []attr{{oidO, asn1.TagBMPString, ucs2("São 日")}}),
			oneline: `/O=\x00S\x00\xE3\x00o\x00 e\xE5`, rfc: `O=S\C3\A3o \E6\97\A5`},
		"UniversalString": {der: buildName(t, []attr{{oidO, 28, ucs4("Zé")}}),
			oneline: `/O=\x00\x00\x00Z\x00\x00\x00\xE9`, rfc: `O=Z\C3\A9`},
		"IA5String and NumericString": {der: buildName(t, []attr{{oidSerial, asn1.TagNumericString, "0123 45"}}, []attr{{oidCN, asn1.TagIA5String, "ia5@x"}}),
			oneline: "/serialNumber=0123 45/CN=ia5@x", rfc: "CN=ia5@x,serialNumber=0123 45"},
		"eIDAS attributes": {der: buildName(t, []attr{u8(oidOrgID, "PSDGB-FCA-123456")}, []attr{u8(oidBizCat, "Private Organization")},
			[]attr{ps(oidJurC, "GB")}, []attr{u8(oidJurST, "England")}, []attr{u8(oidJurL, "London")}),
			oneline: "/organizationIdentifier=PSDGB-FCA-123456/businessCategory=Private Organization/jurisdictionC=GB/jurisdictionST=England/jurisdictionL=London",
			rfc:     "jurisdictionL=London,jurisdictionST=England,jurisdictionC=GB,businessCategory=Private Organization,organizationIdentifier=PSDGB-FCA-123456"},
		"multi-valued RDNs": {der: buildName(t, []attr{u8(oidOU, "Payments"), u8(oidSN, "b")}, []attr{u8(oidCN, "a"), u8(oidO, "c"), u8(oidC, "d")}),
			oneline: "/OU=Payments+SN=b/CN=a+O=c+C=d", rfc: "C=d+O=c+CN=a,SN=b+OU=Payments"},
		"slash and plus escaped": {der: buildName(t, []attr{u8(oidO, "Partner Bank/CN=admin")}, []attr{u8(oidCN, "a+b")}),
			oneline: `/O=Partner Bank\/CN=admin/CN=a\+b`, rfc: `CN=a\+b,O=Partner Bank/CN=admin`},
		"RFC 2253 specials": {der: buildName(t, []attr{u8(oidCN, `a,b+c"d\e<f>g;h=i`)}),
			oneline: `/CN=a,b\+c"d\e<f>g;h=i`, rfc: `CN=a\,b\+c\"d\\e\<f\>g\;h=i`, slash: `/CN=a,b\+c"d\x5Ce<f>g;h=i`},
		"spaces at the ends": {der: buildName(t, []attr{u8(oidO, " lead and trail ")}, []attr{u8(oidCN, "end ")}),
			oneline: "/O= lead and trail /CN=end ", rfc: `CN=end\ ,O=\ lead and trail\ `,
			slash: `/O= lead and trail /CN=end\x20`, rfcEdge: `CN=end\ ,O=\ lead and trail\20`},
		"leading hash, lone characters": {der: buildName(t, []attr{u8(oidO, "#x")}, []attr{u8(oidOU, "#")}, []attr{u8(oidCN, " ")}),
			oneline: "/O=#x/OU=#/CN= ", rfc: `CN=\ ,OU=#,O=\#x`, slash: `/O=#x/OU=#/CN=\x20`},
		"empty values": {der: buildName(t, []attr{ps(oidO, "")}, []attr{u8(oidCN, "")}),
			oneline: "/O=/CN=", rfc: "CN=,O="},
		"control characters": {der: buildName(t, []attr{u8(oidCN, "a\x01b\tc\r\nd\x7f")}),
			oneline: `/CN=a\x01b\x09c\x0D\x0Ad\x7F`, rfc: `CN=a\01b\09c\0D\0Ad\7F`},
		// OpenSSL cuts a dotted OID at 79 characters.
		"unknown OIDs": {der: buildName(t, []attr{u8(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, "custom")}, []attr{ps(oidLongID, "x")}),
			oneline: "/1.3.6.1.4.1.55555.1=custom/1.3.6.1.4.1.55555.123456789.987654321.123456789.987654321.123456789.987654321.1=x",
			rfc:     "1.3.6.1.4.1.55555.123456789.987654321.123456789.987654321.123456789.987654321.1=#130178,1.3.6.1.4.1.55555.1=#0C06637573746F6D"},
		"backslash before an RDN": {der: buildName(t, []attr{u8(oidO, `a\`)}, []attr{u8(oidCN, "b")}),
			oneline: `/O=a\/CN=b`, rfc: `CN=b,O=a\\`, slash: `/O=a\x5C/CN=b`},
		"empty name": {der: buildName(t), oneline: "", rfc: ""},
	}
}

func TestDNGolden(t *testing.T) {
	for name, tt := range dnGolden(t) {
		t.Run(name, func(t *testing.T) {
			one, err := OpenSSLOneline(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			rfc, err := OpenSSLRFC2253(tt.der)
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
