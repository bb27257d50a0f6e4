package pki

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/tooltest"
	"github.com/google/go-cmp/cmp"
)

// TestFormatGolden pins every certificate format that feeds a header. The
// DN, serial and fingerprint values were cross-checked with
// `openssl x509 -noout -subject -issuer -serial -fingerprint -nameopt compat`
// and `-nameopt RFC2253` (OpenSSL 3.0); the one-line form prints the
// BMPString title as its raw UCS-2 bytes, as X509_NAME_oneline does.
func TestFormatGolden(t *testing.T) {
	_, leaf := goldenCerts(t)
	got := map[string]string{
		"ssl_client_s_dn":                 SubjectSlashDN(leaf),
		"ssl_client_i_dn":                 IssuerSlashDN(leaf),
		"ssl_client_s_dn_rfc2253":         SubjectRFC2253(leaf),
		"issuer_rfc2253":                  IssuerRFC2253(leaf),
		"ssl_client_s_dn_parsed":          SubjectCN(leaf),
		"ssl_client_serial":               SerialHex(leaf),
		"ssl_client_fingerprint":          FingerprintSHA1(leaf),
		"ssl_client_fingerprint_sha256":   FingerprintSHA256(leaf),
		"ssl_client_v_start":              TimeStamp(leaf.NotBefore),
		"ssl_client_v_end":                TimeStamp(leaf.NotAfter),
		"ssl_client_san_dns":              SANDNS(leaf),
		"ssl_client_san_uri":              SANURI(leaf),
		"slashDNOf(goldenSubject)":        slashDNOf(goldenSubject),
		"ssl_client_i_dn_rfc2253":         IssuerRFC2253(leaf),
		"ssl_client_cert_thumbprint_s256": ThumbprintS256(leaf),
		// The PEM is pinned by the fingerprints; here, where it goes.
		"ssl_client_xfcc":     strings.Replace(XFCC(leaf), EscapedPEM(leaf), "<ssl_client_escaped_cert>", 1),
		"ssl_client_raw_cert": strings.ReplaceAll(RawPEM(leaf), strings.ReplaceAll(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))), "\n", " "), "<one-line PEM>"),
	}
	want := map[string]string{
		"ssl_client_s_dn":               "/DC=example/C=BR/ST=Sao Paulo/L=Sao Paulo/O=Partner Bank/OU=Payments+UID=u-42/title=\\x00O\\x00p\\x00s\\x00 \\x00L\\x00e\\x00a\\x00d/1.3.6.1.4.1.55555.1=custom value/serialNumber=12345/CN=partner-app/emailAddress=ops@partner.example",
		"ssl_client_i_dn":               "/C=US/O=Example/CN=Example Root",
		"ssl_client_s_dn_rfc2253":       "emailAddress=ops@partner.example,CN=partner-app,serialNumber=12345,1.3.6.1.4.1.55555.1=#130C637573746F6D2076616C7565,title=Ops Lead,UID=u-42+OU=Payments,O=Partner Bank,L=Sao Paulo,ST=Sao Paulo,C=BR,DC=example",
		"issuer_rfc2253":                "CN=Example Root,O=Example,C=US",
		"ssl_client_s_dn_parsed":        "partner-app",
		"ssl_client_serial":             "8F:01:AB",
		"ssl_client_fingerprint":        "15d2abbd361306726868a0575db293a465016a9c",
		"ssl_client_fingerprint_sha256": "29274d1a03487be54d090357b557d8c0c15931edf00fbcbafbfcc194a3c024da",
		"ssl_client_v_start":            "20240301123045",
		"ssl_client_v_end":              "20260301123045",
		"ssl_client_san_dns":            "app.partner.example,*.api.partner.example",
		"ssl_client_san_uri":            "spiffe://bank.example/ns/partners/sa/app,https://partner.example/id",
		"ssl_client_i_dn_rfc2253":       "CN=Example Root,O=Example,C=US",
		// base64url of the SHA-256 above: RFC 8705's x5t#S256.
		"ssl_client_cert_thumbprint_s256": "KSdNGgNIe-VNCQNXtVfYwMFZMe3wD7y6-_zBlKPAJNo",
		"ssl_client_xfcc": `Hash=29274d1a03487be54d090357b557d8c0c15931edf00fbcbafbfcc194a3c024da;Cert="<ssl_client_escaped_cert>";` +
			`Subject="emailAddress=ops@partner.example,CN=partner-app,serialNumber=12345,1.3.6.1.4.1.55555.1=#130C637573746F6D2076616C7565,title=Ops Lead,UID=u-42+OU=Payments,O=Partner Bank,L=Sao Paulo,ST=Sao Paulo,C=BR,DC=example";` +
			`URI=spiffe://bank.example/ns/partners/sa/app;URI=https://partner.example/id;DNS=app.partner.example;DNS=*.api.partner.example`,
		"ssl_client_raw_cert":      "<one-line PEM>",
		"slashDNOf(goldenSubject)": "/DC=example/C=BR/ST=Sao Paulo/L=Sao Paulo/O=Partner Bank/OU=Payments+UID=u-42/title=\\x00O\\x00p\\x00s\\x00 \\x00L\\x00e\\x00a\\x00d/1.3.6.1.4.1.55555.1=custom value/serialNumber=12345/CN=partner-app/emailAddress=ops@partner.example",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("formats (-want +got):\n%s", diff)
	}
}

// TestFormatMatchesOpenSSL compares the DN, serial and fingerprint formats
// with the openssl command when it is installed.
func TestFormatMatchesOpenSSL(t *testing.T) {
	tooltest.Path(t, "openssl", "openssl")
	ca, _ := goldenCerts(t)
	key := seededKey(3)
	leaf := mustCreate(t, &x509.Certificate{
		SerialNumber: big.NewInt(0x0100),
		RawSubject: mustRaw(t, pkix.RDNSequence{
			{atv(asn1.ObjectIdentifier{2, 5, 4, 6}, "BR")},
			{atv(asn1.ObjectIdentifier{2, 5, 4, 10}, "Partner Bank")},
			{atv(asn1.ObjectIdentifier{2, 5, 4, 11}, "Payments"), atv(oidUID, "u-42")},
			{atv(asn1.ObjectIdentifier{2, 5, 4, 3}, "partner-app")},
		}),
		NotBefore: goldenStart,
		NotAfter:  goldenEnd,
	}, ca, leafKeyPublic(key), seededKey(1))
	in := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	run := func(args ...string) string {
		cmd := exec.Command("openssl", append([]string{"x509", "-noout"}, args...)...)
		cmd.Stdin = strings.NewReader(string(in))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		return v
	}
	got := []string{SubjectSlashDN(leaf), IssuerSlashDN(leaf), SubjectRFC2253(leaf),
		strings.ReplaceAll(SerialHex(leaf), ":", ""), strings.ToUpper(FingerprintSHA1(leaf))}
	want := []string{run("-subject", "-nameopt", "compat"), run("-issuer", "-nameopt", "compat"),
		run("-subject", "-nameopt", "RFC2253"), run("-serial"),
		strings.ReplaceAll(run("-fingerprint", "-sha1"), ":", "")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("formats vs openssl (-openssl +pki):\n%s", diff)
	}
}

func TestDNValues(t *testing.T) {
	oidUnknownInt := pkix.RDNSequence{
		{atv(asn1.ObjectIdentifier{2, 5, 4, 3}, `#a,b+c"d\e<f>g;h`+"\nend ")},
		{atv(oidUnknown, 42)},
	}
	// crypto/x509 refuses to parse such names, so build the certificate
	// value directly: the formatters only read the raw DN.
	cert := &x509.Certificate{RawSubject: mustRaw(t, oidUnknownInt), RawIssuer: mustRaw(t, pkix.RDNSequence{})}
	tests := map[string]struct{ got, want string }{
		// OpenSSL prints the content octets of a value that is not a
		// string (it refuses to parse such a name; so does crypto/x509).
		"slash with non-string value": {SubjectSlashDN(cert), `/CN=#a,b\+c"d\x5Ce<f>g;h\x0Aend /1.3.6.1.4.1.55555.1=*`},
		// The final "\ " becomes "\20", which a header keeps whole.
		"rfc2253 escapes":        {SubjectRFC2253(cert), `1.3.6.1.4.1.55555.1=#02012A,CN=\#a\,b\+c\"d\\e\<f\>g\;h\0Aend\20`},
		"SlashDN with Go values": {slashDNOf(oidUnknownInt), `/CN=#a,b\+c"d\x5Ce<f>g;h\x0Aend /1.3.6.1.4.1.55555.1=*`},
		"empty issuer":           {IssuerSlashDN(cert), ""},
		"empty sequence":         {slashDNOf(nil), ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSerialHex(t *testing.T) {
	tests := map[string]struct {
		serial *big.Int
		want   string
	}{
		"zero":                 {big.NewInt(0), "00"},
		"one":                  {big.NewInt(1), "01"},
		"inner zero byte":      {big.NewInt(0x0100), "01:00"},
		"DER leading zero":     {big.NewInt(0x8F01AB), "8F:01:AB"},
		"negative":             {big.NewInt(-0x1234), "-12:34"},
		"twenty bytes":         {new(big.Int).Lsh(big.NewInt(0x7f), 152), "7F:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00"},
		"uppercase hex digits": {big.NewInt(0xabcdef), "AB:CD:EF"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := SerialHex(&x509.Certificate{SerialNumber: tt.serial})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEscapedPEM(t *testing.T) {
	_, leaf := goldenCerts(t)
	got := EscapedPEM(leaf)
	if !strings.HasPrefix(got, "-----BEGIN%20CERTIFICATE-----%0A") || !strings.HasSuffix(got, "-----END%20CERTIFICATE-----%0A") {
		t.Errorf("EscapedPEM = %.40q...%q, want BEGIN/END lines with %%20 and %%0A", got, got[len(got)-30:])
	}
	// Base64 has "+", "/" and "=", which must be escaped in uppercase hex.
	for i := 0; i < len(got); i++ {
		switch c := got[i]; {
		case c == '%':
			if i+2 >= len(got) || !strings.ContainsRune("0123456789ABCDEF", rune(got[i+1])) || !strings.ContainsRune("0123456789ABCDEF", rune(got[i+2])) {
				t.Fatalf("EscapedPEM has a malformed escape at %d: %q", i, got[i:min(i+3, len(got))])
			}
		case !isUnreserved(c):
			t.Fatalf("EscapedPEM has %q at %d", c, i)
		}
	}
	decoded, err := url.PathUnescape(got)
	if err != nil {
		t.Fatal(err)
	}
	want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	if diff := cmp.Diff(want, decoded); diff != "" {
		t.Errorf("unescaped EscapedPEM (-want +got):\n%s", diff)
	}
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// FuzzEscapedPEM: the one-pass EscapedPEM is the percent-encoding (every
// byte but RFC 3986's unreserved as %XX, uppercase) of
// pem.EncodeToMemory's output, for any DER, across the size where its
// base64 no longer fits the stack buffer.
func FuzzEscapedPEM(f *testing.F) {
	_, leaf := goldenCerts(f)
	f.Add(leaf.Raw)
	f.Add([]byte{})
	f.Add([]byte{0xfb})             // "+w=="
	f.Add([]byte{0xff, 0xff, 0xfe}) // "///+"
	f.Add(bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, 512))
	f.Add(bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, 513))
	f.Add(bytes.Repeat([]byte{7}, 5000))
	f.Fuzz(func(t *testing.T, der []byte) {
		const digits = "0123456789ABCDEF"
		var want strings.Builder
		for _, c := range pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) {
			if isUnreserved(c) {
				want.WriteByte(c)
			} else {
				want.WriteString("%" + string(digits[c>>4]) + string(digits[c&0x0f]))
			}
		}
		if got := escapedPEM(der); got != want.String() {
			t.Errorf("escapedPEM of %d bytes:\n got %q\nwant %q", len(der), got, want.String())
		}
	})
}

func TestTimeStamp(t *testing.T) {
	saoPaulo := time.FixedZone("BRT", -3*3600)
	tests := map[string]struct {
		in   time.Time
		want string
	}{
		"utc":        {time.Date(2024, 3, 1, 12, 30, 45, 999, time.UTC), "20240301123045"},
		"other zone": {time.Date(2024, 12, 31, 22, 0, 5, 0, saoPaulo), "20250101010005"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, TimeStamp(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderSafe(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":          {"partner-app", "partner-app"},
		"CRLF injection": {"evil\r\nX-Injected: 1", "evil%0D%0AX-Injected: 1"},
		"tab":            {"a\tb", "a%09b"},
		"NUL and DEL":    {"a\x00b\x7fc", "a%00b%7Fc"},
		"non-ASCII":      {"São Paulo", "S%C3%A3o Paulo"},
		"invalid UTF-8":  {"a\xffb", "a%FFb"},
		"percent kept":   {"100%25", "100%25"},
		"empty":          {"", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := HeaderSafe(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if again := HeaderSafe(got); again != got {
				t.Errorf("HeaderSafe is not idempotent: %q -> %q", got, again)
			}
		})
	}
}

// TestHeaderSafeCertificateCN checks the path a hostile CN takes to a header.
func TestHeaderSafeCertificateCN(t *testing.T) {
	ca, _ := goldenCerts(t)
	cn := "evil\r\nX-Admin: true\x00 São\x7f"
	leaf := mustCreate(t, &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    goldenStart,
		NotAfter:     goldenEnd,
	}, ca, leafKeyPublic(seededKey(4)), seededKey(1))
	got := map[string]string{
		"cn":    HeaderSafe(SubjectCN(leaf)),
		"slash": HeaderSafe(SubjectSlashDN(leaf)),
	}
	want := map[string]string{
		"cn":    "evil%0D%0AX-Admin: true%00 S%C3%A3o%7F",
		"slash": `/CN=evil\x0D\x0AX-Admin: true\x00 S\xC3\xA3o\x7F`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestXFCCQuotingAndRawPEM: a URI SAN holding ';' is double-quoted, and the
// raw PEM gives nginx's PEM back when the spaces between its lines become
// line breaks again.
func TestXFCCQuotingAndRawPEM(t *testing.T) {
	ca, _ := goldenCerts(t)
	odd, _ := url.Parse(`https://partner.example/id?a=1;b="2"`)
	leaf := mustCreate(t, &x509.Certificate{
		SerialNumber: big.NewInt(9),
		Subject:      pkix.Name{CommonName: `quote " me`},
		NotBefore:    goldenStart,
		NotAfter:     goldenEnd,
		URIs:         []*url.URL{odd},
	}, ca, leafKeyPublic(seededKey(5)), seededKey(1))
	x := XFCC(leaf)
	if want := `;Subject="CN=quote \" me";URI="https://partner.example/id?a=1;b=\"2\""`; !strings.HasSuffix(x, want) {
		t.Errorf("XFCC = %q, want suffix %q", x, want)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	raw := RawPEM(leaf)
	begin, end := "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
	body, ok := strings.CutPrefix(raw, begin+" ")
	body, ok2 := strings.CutSuffix(body, " "+end)
	if got := begin + "\n" + strings.ReplaceAll(body, " ", "\n") + "\n" + end + "\n"; !ok || !ok2 || got != pemText {
		t.Errorf("RawPEM with line breaks = %q, want %q", got, pemText)
	}
	if !IsHeaderSafe(RawPEM(leaf)) || !IsHeaderSafe(x) {
		t.Errorf("not header-safe: %q %q", RawPEM(leaf), x)
	}
}

// TestSubjectCNFirst: with several CNs, ssl_client_s_dn_parsed is the first,
// where pkix.Name.CommonName keeps the last.
func TestSubjectCNFirst(t *testing.T) {
	ca, _ := goldenCerts(t)
	leaf := mustCreate(t, &x509.Certificate{
		SerialNumber: big.NewInt(11),
		RawSubject: mustRaw(t, pkix.RDNSequence{
			{atv(asn1.ObjectIdentifier{2, 5, 4, 3}, "first")},
			{atv(asn1.ObjectIdentifier{2, 5, 4, 3}, "second")},
		}),
		NotBefore: goldenStart,
		NotAfter:  goldenEnd,
	}, ca, leafKeyPublic(seededKey(6)), seededKey(1))
	if got := SubjectCN(leaf); got != "first" {
		t.Errorf("SubjectCN = %q, want first (pkix says %q)", got, leaf.Subject.CommonName)
	}
}
