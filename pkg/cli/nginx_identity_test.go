package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// TestNginxIdentityParity is the differential test of the mTLS variables
// against nginx (OpenSSL 3), the judge of docs/nginx-variables.md. nginx and
// "edgectl serve" (a child process) run side by side with the same trusted
// CAs, CRLs and verify depths, one hostname per trust configuration; each
// forwards every client-certificate variable as a request header to a
// recording origin. A generated corpus of client certificates (made here,
// at test time) covers the certificates partners carry and the ways
// verification fails; for every certificate, every edgectl variable is
// compared with nginx's value, through the documented mapping where the
// forms differ (colon-separated serial, YYYYMMDDHHmmSS dates, header-safe
// forms of values nginx cannot put in a header). It skips when nginx is
// not installed, and fails then when CI is "true".
func TestNginxIdentityParity(t *testing.T) {
	nginxBin := nginxBinary(t)
	dir := t.TempDir()
	// EDGECTL_IDT_KEEP=DIR keeps the PKI, nginx.conf and manifests there,
	// to rerun a case by hand.
	if d := os.Getenv("EDGECTL_IDT_KEEP"); d != "" {
		dir = d
	}
	c := newIdentityCorpus(t)

	origin := newRecordingOrigin(t)
	edgeRoot := pkitest.NewCA("idt edge root")
	var hosts []string
	for _, tr := range c.trusts {
		hosts = append(hosts, tr.host())
	}
	server := edgeRoot.IssueServer(hosts)
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("server.pem", server.ChainPEM())
	write("server-key.pem", server.KeyPEM())
	for _, tr := range c.trusts {
		write("ca-"+tr.name+".pem", pkitest.EncodeCertificates(tr.bundle...))
		if tr.crl != nil {
			write("crl-"+tr.name+".pem", pkitest.EncodeCRL(tr.crl))
		}
	}

	ngx := startNginx(t, nginxBin, dir, c, origin.URL)
	edge := startIdentityEdge(t, dir, c, origin.URL)

	roots := edgeRoot.Pool()
	mismatches, compared, certs, refused := 0, 0, 0, 0
	var report []string
	for i, cs := range c.cases {
		path := fmt.Sprintf("/case/%d", i)
		time.Sleep(time.Until(cs.after))
		if cs.chain != nil {
			certs++
		}
		if err := identityRequest(ngx, cs, roots, path); err != nil {
			t.Fatalf("case %s via nginx: %v", cs.name, err)
		}
		err := identityRequest(edge, cs, roots, path)
		if cs.edgeRefuses {
			// A documented difference: crypto/x509 cannot parse the
			// certificate, so the handshake fails.
			refused++
			if err == nil {
				t.Errorf("case %s: edgectl accepted a certificate crypto/x509 cannot parse", cs.name)
			} else {
				t.Logf("case %s: edgectl refuses the handshake (%v); nginx gives s_dn %q", cs.name, err,
					nginxValue(origin.takeOne(t, path, "nginx"), "ssl_client_s_dn"))
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %s via edgectl: %v", cs.name, err)
		}
		got := origin.take(t, path)
		n, e := got["nginx"], got["edgectl"]
		t.Logf("%-42s nginx %s", cs.name+":", nginxValue(n, "ssl_client_verify"))
		for _, v := range identityVars {
			want := v.fromNginx(n, cs)
			if w, ok := cs.wantEdge[v.edge]; ok {
				want = w
			}
			have := e.Get(headerOf(v.edge))
			compared++
			if have != want {
				mismatches++
				report = append(report, fmt.Sprintf("%s: %s\n\tnginx   %q\n\twant    %q\n\tedgectl %q", cs.name, v.edge, n.Get(headerOf(v.nginx)), want, have))
			}
		}
		if cs.check != nil {
			cs.check(t, n, e)
		}
	}
	t.Logf("%d certificates and one client without a certificate, %d variables: %d comparisons, %d mismatches; %d certificates crypto/x509 refuses (documented)",
		certs-refused, len(identityVars), compared, mismatches, refused)
	for _, r := range report {
		t.Error(r)
	}
}

// identityVar is one edgectl variable and how nginx's value maps to it.
type identityVar struct {
	edge  string
	nginx string // nginx variable the value comes from
	// fromNginx returns the value edgectl must give, from the headers nginx
	// sent; nil means nginx's value as it is.
	fromNginx func(h http.Header, cs *identityCase) string
}

// identityVars lists every client-certificate variable of edgectl.
var identityVars = []identityVar{
	{edge: "ssl_client_verify", nginx: "ssl_client_verify", fromNginx: same("ssl_client_verify")},
	{edge: "ssl_client_s_dn", nginx: "ssl_client_s_dn_legacy", fromNginx: slashFromNginx("ssl_client_s_dn_legacy")},
	{edge: "ssl_client_i_dn", nginx: "ssl_client_i_dn_legacy", fromNginx: slashFromNginx("ssl_client_i_dn_legacy")},
	{edge: "ssl_client_s_dn_rfc2253", nginx: "ssl_client_s_dn", fromNginx: rfc2253FromNginx("ssl_client_s_dn")},
	{edge: "ssl_client_i_dn_rfc2253", nginx: "ssl_client_i_dn", fromNginx: rfc2253FromNginx("ssl_client_i_dn")},
	{edge: "ssl_client_serial", nginx: "ssl_client_serial", fromNginx: func(h http.Header, _ *identityCase) string {
		// nginx: i2a_ASN1_INTEGER, "01ABCD"; edgectl (Azion): "01:AB:CD".
		s := nginxValue(h, "ssl_client_serial")
		sign := ""
		if strings.HasPrefix(s, "-") {
			sign, s = "-", s[1:]
		}
		var parts []string
		for i := 0; i+2 <= len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return sign + strings.Join(parts, ":")
	}},
	{edge: "ssl_client_fingerprint", nginx: "ssl_client_fingerprint", fromNginx: same("ssl_client_fingerprint")},
	{edge: "ssl_client_escaped_cert", nginx: "ssl_client_escaped_cert", fromNginx: same("ssl_client_escaped_cert")},
	// nginx's $ssl_client_cert is the PEM with tab-continued lines, which
	// no header can carry; edgectl's is an alias of the escaped form.
	{edge: "ssl_client_cert", nginx: "ssl_client_escaped_cert", fromNginx: same("ssl_client_escaped_cert")},
	// nginx's $ssl_client_raw_cert is multi-line, so nginx cannot forward
	// it; edgectl's is the same PEM with spaces for line breaks.
	{edge: "ssl_client_raw_cert", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		p := nginxPEM(h)
		return strings.ReplaceAll(strings.TrimSuffix(p, "\n"), "\n", " ")
	}},
	{edge: "ssl_client_v_start", nginx: "ssl_client_v_start", fromNginx: azionTime("ssl_client_v_start")},
	{edge: "ssl_client_v_end", nginx: "ssl_client_v_end", fromNginx: azionTime("ssl_client_v_end")},
	{edge: "ssl_client_v_remain", nginx: "ssl_client_v_remain", fromNginx: same("ssl_client_v_remain")},
	// Beyond nginx: computed from the certificate nginx forwarded.
	{edge: "ssl_client_fingerprint_sha256", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		der := nginxDER(h)
		if der == nil {
			return ""
		}
		sum := sha256.Sum256(der)
		return hex.EncodeToString(sum[:])
	}},
	{edge: "ssl_client_cert_thumbprint_s256", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		der := nginxDER(h)
		if der == nil {
			return ""
		}
		sum := sha256.Sum256(der)
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}},
	{edge: "ssl_client_xfcc", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, cs *identityCase) string {
		der := nginxDER(h)
		if der == nil {
			return ""
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return "unparsable certificate: " + err.Error()
		}
		sum := sha256.Sum256(der)
		s := fmt.Sprintf(`Hash=%x;Cert="%s";Subject="%s"`, sum, nginxValue(h, "ssl_client_escaped_cert"), rfc2253FromNginx("ssl_client_s_dn")(h, cs))
		if len(cert.URIs) == 0 {
			s += ";URI="
		}
		for _, u := range cert.URIs {
			s += ";URI=" + xfccQuote(u.String())
		}
		for _, d := range cert.DNSNames {
			s += ";DNS=" + xfccQuote(d)
		}
		return s
	}},
	{edge: "ssl_client_s_dn_parsed", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		// The bare common name: a space at either end is lost in any
		// header, as for every value but the escaped DN forms.
		if cert := nginxCert(h); cert != nil {
			return strings.Trim(pki.HeaderSafe(cert.Subject.CommonName), " ")
		}
		return ""
	}},
	{edge: "ssl_client_san_dns", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		if cert := nginxCert(h); cert != nil {
			return strings.Join(cert.DNSNames, ",")
		}
		return ""
	}},
	{edge: "ssl_client_san_uri", nginx: "ssl_client_escaped_cert", fromNginx: func(h http.Header, _ *identityCase) string {
		if cert := nginxCert(h); cert != nil {
			var s []string
			for _, u := range cert.URIs {
				s = append(s, u.String())
			}
			return strings.Join(s, ",")
		}
		return ""
	}},
}

// nginxVars are the variables nginx forwards, each wrapped in brackets so
// that the origin sees leading and trailing spaces nginx sends.
var nginxVars = []string{"ssl_client_verify", "ssl_client_s_dn", "ssl_client_s_dn_legacy", "ssl_client_i_dn",
	"ssl_client_i_dn_legacy", "ssl_client_serial", "ssl_client_fingerprint", "ssl_client_escaped_cert",
	"ssl_client_v_start", "ssl_client_v_end", "ssl_client_v_remain"}

func headerOf(variable string) string { return "X-V-" + strings.ReplaceAll(variable, "_", "-") }

// nginxValue returns nginx's value of a variable, without the brackets.
func nginxValue(h http.Header, variable string) string {
	v := h.Get(headerOf(variable))
	return strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
}

func same(variable string) func(http.Header, *identityCase) string {
	return func(h http.Header, _ *identityCase) string { return nginxValue(h, variable) }
}

// slashFromNginx maps OpenSSL's one-line DN to edgectl's slash form: a "\"
// that starts none of OpenSSL's escapes ("\/", "\+", "\xXX") is a literal
// backslash, which edgectl writes "\x5C"; a final space is "\x20".
func slashFromNginx(variable string) func(http.Header, *identityCase) string {
	return func(h http.Header, _ *identityCase) string {
		s := nginxValue(h, variable)
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] != '\\' {
				b.WriteByte(s[i])
				continue
			}
			rest := s[i+1:]
			switch {
			case strings.HasPrefix(rest, "/"), strings.HasPrefix(rest, "+"):
				b.WriteString(s[i : i+2])
				i++
			case len(rest) >= 3 && rest[0] == 'x' && isUpperHex(rest[1]) && isUpperHex(rest[2]):
				b.WriteString(s[i : i+4])
				i += 3
			default:
				b.WriteString(`\x5C`)
			}
		}
		out := b.String()
		if strings.HasSuffix(out, " ") {
			out = out[:len(out)-1] + `\x20`
		}
		return out
	}
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// rfc2253FromNginx maps OpenSSL's RFC 2253 DN to edgectl's: a final escaped
// space "\ " is "\20".
func rfc2253FromNginx(variable string) func(http.Header, *identityCase) string {
	return func(h http.Header, _ *identityCase) string {
		s := nginxValue(h, variable)
		if strings.HasSuffix(s, `\ `) {
			s = s[:len(s)-2] + `\20`
		}
		return s
	}
}

// azionTime maps ASN1_TIME_print's "Jan  2 15:04:05 2006 GMT" to edgectl's
// YYYYMMDDHHmmSS.
func azionTime(variable string) func(http.Header, *identityCase) string {
	return func(h http.Header, _ *identityCase) string {
		s := nginxValue(h, variable)
		if s == "" {
			return ""
		}
		tm, err := time.Parse("Jan _2 15:04:05 2006 MST", s)
		if err != nil {
			return "unparsable time " + s
		}
		return tm.UTC().Format("20060102150405")
	}
}

func nginxPEM(h http.Header) string {
	p, err := url.PathUnescape(nginxValue(h, "ssl_client_escaped_cert"))
	if err != nil {
		return ""
	}
	return p
}

func nginxDER(h http.Header) []byte {
	block, _ := pem.Decode([]byte(nginxPEM(h)))
	if block == nil {
		return nil
	}
	return block.Bytes
}

func nginxCert(h http.Header) *x509.Certificate {
	der := nginxDER(h)
	if der == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return cert
}

func xfccQuote(v string) string {
	if !strings.ContainsAny(v, `,;="`) {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// identityTrust is one trust configuration: a hostname on both proxies with
// its CA bundle, optional CRL and verify depth.
type identityTrust struct {
	name   string
	bundle []*x509.Certificate
	crl    *x509.RevocationList
	depth  int // ssl_verify_depth and verifyDepth
}

func (tr *identityTrust) host() string { return tr.name + ".idt.test" }

// identityCase is one client of the corpus.
type identityCase struct {
	name  string
	trust *identityTrust
	// chain is what the client sends (leaf first); nil sends no
	// certificate.
	chain []*x509.Certificate
	key   any
	// wantEdge overrides the mapped value of a variable where the mapping
	// cannot see the difference (a slash DN that OpenSSL prints ambiguously).
	wantEdge map[string]string
	// edgeRefuses marks a certificate that crypto/x509, and so edgectl's
	// handshake, refuses where OpenSSL accepts it.
	edgeRefuses bool
	// after delays the case until then (a CRL that must have expired).
	after time.Time
	// check runs further assertions on the headers nginx and edgectl sent.
	check func(t *testing.T, nginx, edge http.Header)
}

type identityCorpus struct {
	trusts []*identityTrust
	cases  []*identityCase
}

// nameAttr is one attribute of a hand-built DN: the OID, the ASN.1
// universal tag of the string type and the value's bytes.
type nameAttr struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value []byte
}

func utf8A(oid asn1.ObjectIdentifier, s string) nameAttr {
	return nameAttr{oid, asn1.TagUTF8String, []byte(s)}
}
func prA(oid asn1.ObjectIdentifier, s string) nameAttr {
	return nameAttr{oid, asn1.TagPrintableString, []byte(s)}
}

func bmp(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

var (
	oidC         = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidST        = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL         = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidO         = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU        = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN        = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN        = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGN        = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSerial    = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidTitle     = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidBusiness  = asn1.ObjectIdentifier{2, 5, 4, 15}
	oidOrgID     = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidJurL      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 1}
	oidJurST     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 2}
	oidJurC      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}
	oidEmail     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC        = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidUIDAttr   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidPostal    = asn1.ObjectIdentifier{2, 5, 4, 17}
	oidStreet    = asn1.ObjectIdentifier{2, 5, 4, 9}
	oidPseudonym = asn1.ObjectIdentifier{2, 5, 4, 65}
	oidCustom    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}
	oidLong      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 123456789, 987654321, 123456789, 987654321, 123456789, 987654321, 123456789, 987654321, 1}
)

// rawName encodes a DN from RDNs of attributes.
func rawName(t *testing.T, rdns ...[]nameAttr) []byte {
	t.Helper()
	var seq []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, Bytes: a.value})
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

func withRawSubject(der []byte) pkitest.Option {
	return func(c *x509.Certificate) { c.RawSubject = der }
}

func newIdentityCorpus(t *testing.T) *identityCorpus {
	t.Helper()
	now := time.Now()
	// Expiry half a day past a whole number of days, so that v_remain does
	// not change between the two requests of a case.
	validity := pkitest.WithValidity(now.Add(-time.Hour), now.Add(400*24*time.Hour+12*time.Hour))
	root := pkitest.NewCA("Partner Root CA", pkitest.WithSubject(pkix.Name{Country: []string{"BR"}, Organization: []string{"Partner Trust"}, CommonName: "Partner Root CA"}))
	inter := root.Intermediate("Partner Issuing CA", validity)
	main := &identityTrust{name: "main", bundle: []*x509.Certificate{root.Cert}, depth: 4}
	c := &identityCorpus{trusts: []*identityTrust{main}}
	add := func(name string, tr *identityTrust, cert *pkitest.Certificate, chain ...*x509.Certificate) *identityCase {
		cs := &identityCase{name: name, trust: tr, key: cert.Key, chain: append([]*x509.Certificate{cert.Cert}, chain...)}
		c.cases = append(c.cases, cs)
		return cs
	}
	dn := func(name string, rdns ...[]nameAttr) *identityCase {
		return add(name, main, root.IssueClient("", validity, withRawSubject(rawName(t, rdns...))))
	}

	// Names.
	dn("ascii", []nameAttr{prA(oidC, "BR")}, []nameAttr{utf8A(oidO, "Partner Bank")}, []nameAttr{utf8A(oidCN, "partner-app")})
	dn("utf8 non-ASCII", []nameAttr{prA(oidC, "BR")}, []nameAttr{utf8A(oidO, "Banco São Paulo")}, []nameAttr{utf8A(oidL, "Zürich")},
		[]nameAttr{utf8A(oidCN, "北京 app 😀")})
	dn("t61", []nameAttr{prA(oidC, "BR")}, []nameAttr{{oidO, asn1.TagT61String, []byte("Banco S\xe3o Paulo")}}, []nameAttr{{oidCN, asn1.TagT61String, []byte("t61-app")}})
	dn("bmp", []nameAttr{prA(oidC, "BR")}, []nameAttr{{oidO, asn1.TagBMPString, bmp("Banco São Paulo")}}, []nameAttr{{oidCN, asn1.TagBMPString, bmp("日本 app")}})
	dn("ia5 and email", []nameAttr{{oidDC, asn1.TagIA5String, []byte("bank")}}, []nameAttr{{oidDC, asn1.TagIA5String, []byte("example")}},
		[]nameAttr{{oidCN, asn1.TagIA5String, []byte("ia5-app")}}, []nameAttr{{oidEmail, asn1.TagIA5String, []byte("ops@partner.example")}})
	dn("numeric string", []nameAttr{{oidSerial, asn1.TagNumericString, []byte("0123 4567")}}, []nameAttr{utf8A(oidCN, "numeric")})
	dn("eIDAS PSD2 qualified", []nameAttr{prA(oidC, "GB")}, []nameAttr{utf8A(oidO, "Example Payments Ltd")},
		[]nameAttr{utf8A(oidOrgID, "PSDGB-FCA-123456")}, []nameAttr{utf8A(oidBusiness, "Private Organization")},
		[]nameAttr{prA(oidJurC, "GB")}, []nameAttr{utf8A(oidJurST, "England")}, []nameAttr{utf8A(oidJurL, "London")},
		[]nameAttr{prA(oidSerial, "12345678")}, []nameAttr{utf8A(oidCN, "tpp.example.co.uk")})
	dn("open finance Brasil", []nameAttr{prA(oidC, "BR")}, []nameAttr{utf8A(oidO, "Instituição Pagamentos S.A.")},
		[]nameAttr{utf8A(oidOU, "c0ffee00-1234-4abc-9def-000000000001")}, []nameAttr{utf8A(oidUIDAttr, "e1f2a3b4-5678-90ab-cdef-1234567890ab")},
		[]nameAttr{prA(oidJurC, "BR")}, []nameAttr{utf8A(oidBusiness, "Private Organization")}, []nameAttr{prA(oidSerial, "12345678000199")},
		[]nameAttr{utf8A(oidCN, "api.instituicao.com.br")})
	dn("more known attributes", []nameAttr{utf8A(oidStreet, "Rua Augusta, 100")}, []nameAttr{utf8A(oidPostal, "01304-000")},
		[]nameAttr{utf8A(oidTitle, "Ops Lead")}, []nameAttr{utf8A(oidGN, "Ana")}, []nameAttr{utf8A(oidSN, "Souza")},
		[]nameAttr{utf8A(oidPseudonym, "anasouza")}, []nameAttr{utf8A(oidCN, "Ana Souza")})
	dn("multi-valued RDNs", []nameAttr{prA(oidC, "BR")}, []nameAttr{utf8A(oidOU, "Payments"), utf8A(oidUIDAttr, "u-42")},
		[]nameAttr{utf8A(oidCN, "a"), utf8A(oidSN, "b"), utf8A(oidGN, "c")})
	dn("slash and plus inside values", []nameAttr{utf8A(oidO, "Partner Bank/CN=admin")}, []nameAttr{utf8A(oidOU, "a+b")},
		[]nameAttr{utf8A(oidCN, "partner-app")})
	dn("RFC 2253 specials", []nameAttr{utf8A(oidO, `a,b+c"d<e>f;g=h`)}, []nameAttr{utf8A(oidOU, `back\slash`)},
		[]nameAttr{prA(oidCN, "p+r,i=n/t")})
	dn("leading and trailing spaces", []nameAttr{utf8A(oidO, "Trailing ")}, []nameAttr{utf8A(oidOU, " both ")},
		[]nameAttr{utf8A(oidCN, "end ")})
	dn("leading hash and lone specials", []nameAttr{utf8A(oidO, "#hash")}, []nameAttr{utf8A(oidOU, "#")},
		[]nameAttr{utf8A(oidL, " ")}, []nameAttr{utf8A(oidCN, "x#")})
	dn("empty values", []nameAttr{prA(oidC, "BR")}, []nameAttr{prA(oidO, "")}, []nameAttr{utf8A(oidOU, "")}, []nameAttr{utf8A(oidCN, "empty")})
	dn("unknown OIDs", []nameAttr{utf8A(oidCustom, "custom value")}, []nameAttr{prA(oidLong, "long")},
		[]nameAttr{utf8A(oidCN, "oid-app")})
	dn("control characters", []nameAttr{utf8A(oidO, "tab\there")}, []nameAttr{utf8A(oidCN, "a\x01b\x7fc\r\nX-Admin: 1")})
	// OpenSSL's one-line form prints these two names the same; edgectl's
	// does not.
	ambiguousA := dn("backslash before a slash RDN", []nameAttr{utf8A(oidO, `a\`)}, []nameAttr{utf8A(oidCN, "b")})
	ambiguousA.wantEdge = map[string]string{"ssl_client_s_dn": `/O=a\x5C/CN=b`}
	ambiguousB := dn("slash inside a value", []nameAttr{utf8A(oidO, `a/CN=b`)})
	ambiguousB.wantEdge = map[string]string{"ssl_client_s_dn": `/O=a\/CN=b`}
	// UniversalString: OpenSSL prints it; crypto/x509 refuses to parse it,
	// so edgectl's handshake fails (Go cannot make negative serials, and
	// refuses to parse them, either).
	univKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	univ, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(77), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(400 * 24 * time.Hour),
		RawSubject:  rawName(t, []nameAttr{{oidO, 28, []byte("\x00\x00\x00Z\x00\x00\x00\xe9")}}, []nameAttr{utf8A(oidCN, "universal")}),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, root.Cert, &univKey.PublicKey, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	c.cases = append(c.cases, &identityCase{name: "UniversalString", trust: main, key: univKey,
		chain: []*x509.Certificate{{Raw: univ}}, edgeRefuses: true})
	ambiguousA.check = func(t *testing.T, n, _ http.Header) {
		t.Logf("OpenSSL prints %q for O=a\\ + CN=b", nginxValue(n, "ssl_client_s_dn_legacy"))
	}

	// Serials and SANs.
	long, _ := new(big.Int).SetString("7fffffffffffffffffffffffffffffffffffff01", 16)
	add("20-byte serial", main, root.IssueClient("long-serial", validity, pkitest.WithSerial(long)))
	add("serial with a high bit", main, root.IssueClient("high-bit", validity, pkitest.WithSerial(big.NewInt(0xff))))
	add("serial 1", main, root.IssueClient("serial-one", validity, pkitest.WithSerial(big.NewInt(1))))
	add("serial 0", main, root.IssueClient("serial-zero", validity, pkitest.WithSerial(big.NewInt(0))))
	add("SANs", main, root.IssueClient("san-app", validity, pkitest.WithDNSNames("a.partner.test", "b.partner.test"),
		pkitest.WithURIs("spiffe://bank.test/ns/partners/sa/app", "https://partner.test/id?a=1;b=2")))

	// Verification.
	add("intermediate sent", main, inter.IssueClient("via-intermediate", validity), inter.Cert)
	add("intermediate not sent", main, inter.IssueClient("lonely-leaf", validity))
	other := pkitest.NewCA("Unknown Root")
	otherInter := other.Intermediate("Unknown Issuing CA")
	add("unknown issuer not sent", main, other.IssueClient("stranger", validity))
	add("unknown self-signed root sent", main, other.IssueClient("stranger-with-root", validity), other.Cert)
	add("unknown intermediate sent", main, otherInter.IssueClient("stranger-with-intermediate", validity), otherInter.Cert)
	add("self-signed leaf", main, &pkitest.NewCA("self-signed", pkitest.WithIsCA(false), pkitest.WithExtKeyUsage(x509.ExtKeyUsageClientAuth)).Certificate)
	add("expired", main, root.IssueClient("expired", pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3))))
	add("not yet valid", main, root.IssueClient("future", pkitest.WithValidity(now.AddDate(0, 0, 3), now.AddDate(1, 0, 0))))
	expiredInter := root.Intermediate("Expired Issuing CA", pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1)))
	add("expired intermediate sent", main, expiredInter.IssueClient("under-expired", validity), expiredInter.Cert)
	add("expired, unknown issuer", main, other.IssueClient("expired-stranger", pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3))))
	add("server-only EKU", main, root.IssueClient("server-eku", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)))
	add("CA certificate as leaf", main, &root.Intermediate("ca-as-leaf", validity).Certificate)
	// A CA certificate that may sign (digitalSignature) and authenticate
	// clients: OpenSSL accepts it as a client's own certificate; edgectl
	// refuses it on purpose (a CA's key signs certificates, it does not
	// identify a partner).
	caLeaf := add("CA certificate as leaf, digitalSignature", main, &root.Intermediate("ca-as-leaf-ds", validity,
		func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageDigitalSignature },
		pkitest.WithExtKeyUsage(x509.ExtKeyUsageClientAuth)).Certificate)
	caLeaf.wantEdge = map[string]string{"ssl_client_verify": "FAILED:unsuitable certificate purpose"}
	caLeaf.check = func(t *testing.T, n, _ http.Header) {
		if v := nginxValue(n, "ssl_client_verify"); v != "SUCCESS" {
			t.Errorf("nginx verifies a CA certificate as leaf as %q; the documented difference assumes SUCCESS", v)
		}
	}
	notCA := root.Intermediate("Not A CA", validity, pkitest.WithIsCA(false), func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign })
	add("intermediate not a CA", main, notCA.IssueClient("under-not-ca", validity), notCA.Cert)
	pathLen0 := root.Intermediate("Path Length 0", validity, pkitest.WithMaxPathLen(0))
	below := pathLen0.Intermediate("Below Path Length 0", validity)
	add("path length exceeded", main, below.IssueClient("too-deep", validity), below.Chain...)
	add("expired and server-only EKU", main, root.IssueClient("expired-server", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth), pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3))))
	add("self-signed leaf, expired", main, &pkitest.NewCA("self-signed-expired", pkitest.WithIsCA(false), pkitest.WithExtKeyUsage(x509.ExtKeyUsageClientAuth), pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3))).Certificate)
	add("anyExtendedKeyUsage only", main, root.IssueClient("any-eku", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageAny)))
	add("key usage without digitalSignature", main, root.IssueClient("key-enc", validity, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }))
	add("no EKU extension", main, root.IssueClient("no-eku", validity, pkitest.WithExtKeyUsage()))
	add("unknown intermediate sent, server-only EKU", main, otherInter.IssueClient("stranger-server", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)), otherInter.Cert)
	add("unknown root sent, server-only EKU", main, other.IssueClient("stranger-root-server", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)), other.Cert)
	add("unknown issuer not sent, server-only EKU", main, other.IssueClient("stranger-alone-server", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)))
	add("self-signed leaf, server-only EKU", main, &pkitest.NewCA("self-signed-server", pkitest.WithIsCA(false), pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)).Certificate)
	c.cases = append(c.cases, &identityCase{name: "no certificate", trust: main})

	// Depth: ssl_verify_depth 2 and verifyDepth 2.
	deepRoot := pkitest.NewCA("Deep Root")
	deep := &identityTrust{name: "depth", bundle: []*x509.Certificate{deepRoot.Cert}, depth: 2}
	c.trusts = append(c.trusts, deep)
	i1 := deepRoot.Intermediate("Deep 1")
	i2 := i1.Intermediate("Deep 2")
	i3 := i2.Intermediate("Deep 3")
	add("depth: one intermediate", deep, i1.IssueClient("d1", validity), i1.Chain...)
	add("depth: two intermediates", deep, i2.IssueClient("d2", validity), i2.Chain...)
	add("depth: three intermediates", deep, i3.IssueClient("d3", validity), i3.Chain...)

	// Revocation.
	crlRoot := pkitest.NewCA("CRL Root")
	good := crlRoot.IssueClient("not-revoked", validity)
	revoked := crlRoot.IssueClient("revoked", validity)
	revokedServer := crlRoot.IssueClient("revoked-server", validity, pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	revokedExpired := crlRoot.IssueClient("revoked-expired", pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3)))
	withCRL := &identityTrust{name: "crl", bundle: []*x509.Certificate{crlRoot.Cert}, depth: 4,
		crl: crlRoot.CRL(now.Add(-time.Hour), now.Add(24*time.Hour), revoked.Cert.SerialNumber, revokedExpired.Cert.SerialNumber, revokedServer.Cert.SerialNumber)}
	c.trusts = append(c.trusts, withCRL)
	add("CRL, not revoked", withCRL, good)
	add("CRL, revoked", withCRL, revoked)
	// edgectl apply refuses a CRL past its nextUpdate, so this one expires
	// a few seconds after the proxies start; the case waits for it.
	oldRoot := pkitest.NewCA("Stale CRL Root")
	staleAt := now.Add(5 * time.Second).Truncate(time.Second)
	staleCRL := &identityTrust{name: "stalecrl", bundle: []*x509.Certificate{oldRoot.Cert}, depth: 4,
		crl: oldRoot.CRL(now.Add(-48*time.Hour), staleAt)}
	c.trusts = append(c.trusts, staleCRL)
	add("CRL expired", staleCRL, oldRoot.IssueClient("stale", validity)).after = staleAt.Add(time.Second)

	// Name constraints.
	ncRoot := pkitest.NewCA("Constrained Root", func(c *x509.Certificate) {
		c.PermittedDNSDomains = []string{"partner.test"}
		c.ExcludedDNSDomains = []string{"blocked.partner.test"}
	}, pkitest.WithValidity(now.AddDate(-5, 0, 0), now.AddDate(5, 0, 0)))
	nc := &identityTrust{name: "nc", bundle: []*x509.Certificate{ncRoot.Cert}, depth: 4}
	c.trusts = append(c.trusts, nc)
	add("name constraints, permitted", nc, ncRoot.IssueClient("ok", validity, pkitest.WithDNSNames("app.partner.test")))
	add("name constraints, outside permitted", nc, ncRoot.IssueClient("outside", validity, pkitest.WithDNSNames("app.evil.test")))
	add("name constraints, excluded", nc, ncRoot.IssueClient("excluded", validity, pkitest.WithDNSNames("x.blocked.partner.test")))
	add("name constraints, outside and expired", nc, ncRoot.IssueClient("outside-expired", pkitest.WithDNSNames("app.evil.test"),
		pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -3))))
	add("CRL, revoked and expired", withCRL, revokedExpired)
	add("CRL, revoked and server-only EKU", withCRL, revokedServer)
	return c
}

// nginxBinary returns nginx's path, skipping the test when it is missing
// (failing it when CI is "true").
func nginxBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				return p
			}
		}
		msg := "nginx is not installed (apt-get install nginx, or make tools): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// startNginx runs nginx in the foreground with one server per trust
// configuration and returns its address. ssl_verify_client is
// optional_no_ca (the verification and $ssl_client_verify are those of
// "optional"), and error_page forwards the requests nginx would answer
// with its "SSL certificate error" page, so that every verification result
// reaches the origin.
func startNginx(t *testing.T, bin, dir string, c *identityCorpus, origin string) string {
	t.Helper()
	// nginx cannot listen on port 0 and say which port it got.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	var conf strings.Builder
	fmt.Fprintf(&conf, `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp-body;
  proxy_temp_path %[1]s/tmp-proxy;
  fastcgi_temp_path %[1]s/tmp-fastcgi;
  uwsgi_temp_path %[1]s/tmp-uwsgi;
  scgi_temp_path %[1]s/tmp-scgi;
`, dir)
	for _, tr := range c.trusts {
		fmt.Fprintf(&conf, `  server {
    listen %s ssl;
    server_name %s;
    ssl_certificate %s/server.pem;
    ssl_certificate_key %s/server-key.pem;
    ssl_client_certificate %s/ca-%s.pem;
    ssl_verify_client optional_no_ca;
    ssl_verify_depth %d;
`, addr, tr.host(), dir, dir, dir, tr.name, tr.depth)
		if tr.crl != nil {
			fmt.Fprintf(&conf, "    ssl_crl %s/crl-%s.pem;\n", dir, tr.name)
		}
		// nginx answers 495 (as "400 The SSL certificate error") to a
		// certificate that failed for a reason other than its CA, even with
		// optional_no_ca; error_page sends those requests on all the same.
		conf.WriteString("    error_page 495 = @identity;\n    location / { error_page 418 = @identity; return 418; }\n")
		fmt.Fprintf(&conf, "    location @identity {\n      proxy_pass %s;\n      proxy_set_header X-Idt-Proxy nginx;\n", origin)
		for _, v := range nginxVars {
			fmt.Fprintf(&conf, "      proxy_set_header %s \"[$%s]\";\n", headerOf(v), v)
		}
		conf.WriteString("    }\n  }\n")
	}
	conf.WriteString("}\n")
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "nginx-error.log"))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = lockedWriter{out}, lockedWriter{out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
			t.Logf("nginx output:\n%s\nnginx error log:\n%s", out.String(), log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return addr
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct{ b *lockedBuffer }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.b.add(string(p))
	return len(p), nil
}

// startIdentityEdge applies manifests equivalent to the nginx
// configuration (Permissive domains, one application forwarding every
// variable) and runs "edgectl serve" as a child process.
func startIdentityEdge(t *testing.T, dir string, c *identityCorpus, origin string) string {
	t.Helper()
	var m strings.Builder
	m.WriteString(`apiVersion: edgectl.dev/v1
kind: Certificate
metadata: {name: edge}
spec: {certificateFile: server.pem, privateKeyFile: server-key.pem}
---
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: idt}
spec:
  origin: {url: "` + origin + `"}
  rules:
    - name: forward the client identity
      behaviors:
        - addRequestHeader: "X-Idt-Proxy: edgectl"
`)
	for _, v := range identityVars {
		fmt.Fprintf(&m, "        - addRequestHeader: \"%s: ${%s}\"\n", headerOf(v.edge), v.edge)
	}
	for _, tr := range c.trusts {
		fmt.Fprintf(&m, `---
apiVersion: edgectl.dev/v1
kind: TrustedCA
metadata: {name: %s}
spec:
  certificateFile: ca-%s.pem
  verifyDepth: %d
`, tr.name, tr.name, tr.depth)
		if tr.crl != nil {
			fmt.Fprintf(&m, "  crlFiles: [crl-%s.pem]\n", tr.name)
		}
		fmt.Fprintf(&m, `---
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: %s}
spec:
  hostnames: [%s]
  certificate: edge
  application: idt
  mtls: {enabled: true, verification: permissive, trustedCA: %s}
`, tr.name, tr.host(), tr.name)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(m.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &serveEnv{dir: dir, state: filepath.Join(dir, "state.json")}
	var out strings.Builder
	apply := exec.Command("edgectl", "apply", "-f", filepath.Join(dir, "edge.yaml"), "--state", e.state)
	apply.Dir = dir
	apply.Stdout, apply.Stderr = &out, &out
	if err := apply.Run(); err != nil {
		t.Fatalf("edgectl apply: %v\n%s", err, out.String())
	}
	// The manifests (and so the key references) are in dir itself; the
	// last --key-dir wins over serveWith's default.
	return e.serveWith(t, "", "--key-dir", dir).edge
}

// identityRequest sends GET path to a proxy over a new connection, with the
// case's hostname as SNI and its chain as client certificate.
func identityRequest(addr string, cs *identityCase, roots *x509.CertPool, path string) error {
	cfg := &tls.Config{ServerName: cs.trust.host(), RootCAs: roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cs.chain == nil {
				return &tls.Certificate{}, nil
			}
			c := &tls.Certificate{PrivateKey: cs.key}
			for _, x := range cs.chain {
				c.Certificate = append(c.Certificate, x.Raw)
			}
			return c, nil
		}}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: false,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + cs.trust.host() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, body[:n])
	}
	return nil
}

// recordingOrigin keeps the headers of each request by path and proxy.
type recordingOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]map[string]http.Header
}

func newRecordingOrigin(t *testing.T) *recordingOrigin {
	o := &recordingOrigin{seen: map[string]map[string]http.Header{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.seen[r.URL.Path] == nil {
			o.seen[r.URL.Path] = map[string]http.Header{}
		}
		o.seen[r.URL.Path][r.Header.Get("X-Idt-Proxy")] = r.Header.Clone()
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *recordingOrigin) takeOne(t *testing.T, path, proxy string) http.Header {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.seen[path][proxy]
	if h == nil {
		t.Fatalf("origin saw no request from %s for %s", proxy, path)
	}
	return h
}

func (o *recordingOrigin) take(t *testing.T, path string) map[string]http.Header {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.seen[path]
	for _, p := range []string{"nginx", "edgectl"} {
		if got[p] == nil {
			var seen []string
			for k := range got {
				seen = append(seen, k)
			}
			sort.Strings(seen)
			t.Fatalf("origin saw no request from %s for %s (saw %v)", p, path, seen)
		}
	}
	return got
}
