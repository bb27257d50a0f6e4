package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/google/go-cmp/cmp"
)

// FuzzSlashDN formats arbitrary distinguished names: no panic, and the
// result has one "/" per attribute value that does not itself hold one.
func FuzzSlashDN(f *testing.F) {
	f.Add("Partner Bank", "partner-app", "BR")
	f.Add("a/b", "c=d", "")
	f.Add("\x00", "é", "\r\n")
	f.Fuzz(func(t *testing.T, o, cn, c string) {
		rdns := pkix.Name{Organization: []string{o}, CommonName: cn, Country: []string{c}}.ToRDNSequence()
		der, err := asn1.Marshal(rdns)
		if err != nil {
			return
		}
		var back pkix.RDNSequence
		if _, err := asn1.Unmarshal(der, &back); err != nil {
			return
		}
		got := slashDNOf(back)
		if !strings.HasPrefix(got, "/") && got != "" {
			t.Fatalf("slashDNOf = %q", got)
		}
	})
}

// slashAttr is one attribute read back from a slash-form DN.
type slashAttr struct {
	RDN   int
	Type  string
	Value string
}

// parseSlashDN reads a DN in edgectl's slash form the way an OpenSSL-style
// parser does: "/" starts an RDN, "+" another attribute of the same RDN,
// the type ends at the first "=", and "\/", "\+" and "\xHH" are escapes.
// Any other "\" is an error: edgectl writes a backslash as "\x5C".
func parseSlashDN(s string) ([]slashAttr, error) {
	var out []slashAttr
	if s == "" {
		return nil, nil
	}
	if s[0] != '/' {
		return nil, fmt.Errorf("%q does not start with /", s)
	}
	rdn := -1
	var cur []byte
	flush := func() error {
		name, value, ok := strings.Cut(string(cur), "=")
		if !ok {
			return fmt.Errorf("attribute %q has no =", cur)
		}
		out = append(out, slashAttr{RDN: rdn, Type: name, Value: value})
		cur = cur[:0]
		return nil
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '/', '+':
			if i > 0 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			if c == '/' {
				rdn++
			}
		case '\\':
			switch {
			case i+1 < len(s) && (s[i+1] == '/' || s[i+1] == '+'):
				cur = append(cur, s[i+1])
				i++
			case i+3 < len(s) && s[i+1] == 'x':
				b, err := hex.DecodeString(s[i+2 : i+4])
				if err != nil {
					return nil, fmt.Errorf("bad escape %q", s[i:i+4])
				}
				cur = append(cur, b[0])
				i += 3
			default:
				return nil, fmt.Errorf("lone backslash at %d of %q", i, s)
			}
		default:
			cur = append(cur, c)
		}
	}
	return out, flush()
}

// FuzzDNForms builds DNs of every string type OpenSSL and crypto/x509 both
// read, with multi-valued RDNs and known and unknown types, from the fuzzer's
// bytes. The four DN formatters never emit a control character or a byte
// outside ASCII, edgectl's forms never end in a space, and edgectl's slash
// form reads back through an OpenSSL-style parser to the same RDN sequence.
func FuzzDNForms(f *testing.F) {
	f.Add([]byte("\x00\x05hello\x81\x03a/b\x02\x04S\xe3o "))
	f.Add([]byte("\x13\x06a\\+b\\x\x24\x02\x00\xe3\x45\x04\x00\x00\x00A"))
	f.Add([]byte("\x07\x01#\x17\x01 \x00\x00"))
	tags := []int{asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String,
		asn1.TagNumericString, asn1.TagBMPString, 28}
	oids := []asn1.ObjectIdentifier{{2, 5, 4, 3}, {2, 5, 4, 10}, {2, 5, 4, 97}, {1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3},
		{0, 9, 2342, 19200300, 100, 1, 1}, {1, 3, 6, 1, 4, 1, 55555, 1}, {2, 5, 4, 15}, {1, 2, 840, 113549, 1, 9, 1}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rdns [][]attr
		for len(data) >= 2 {
			sel, n := data[0], int(data[1]%24)
			data = data[2:]
			n = min(n, len(data))
			a := attr{OID: oids[int(sel)%len(oids)], Tag: tags[int(sel>>3)%len(tags)], Value: string(data[:n])}
			data = data[n:]
			switch a.Tag {
			case asn1.TagBMPString:
				a.Value = a.Value[:len(a.Value)/2*2]
			case 28:
				a.Value = a.Value[:len(a.Value)/4*4]
			}
			if sel&0x80 != 0 && len(rdns) > 0 {
				rdns[len(rdns)-1] = append(rdns[len(rdns)-1], a)
			} else {
				rdns = append(rdns, []attr{a})
			}
		}
		der := pkitest.RawName(rdns...)
		one, err1 := opensslOnelineDN(der)
		rfc, err2 := opensslRFC2253DN(der)
		if err1 != nil || err2 != nil {
			t.Fatalf("a name that encoding/asn1 wrote does not parse: %v %v", err1, err2)
		}
		slash, rfcEdge := slashDN(der), rfc2253DN(der)
		for _, s := range []string{one, rfc, slash, rfcEdge} {
			for i := 0; i < len(s); i++ {
				if c := s[i]; c < 0x20 || c >= 0x7f {
					t.Fatalf("%q holds byte %#x", s, c)
				}
			}
		}
		if strings.HasSuffix(slash, " ") || strings.HasSuffix(rfcEdge, " ") {
			t.Fatalf("ends in a space, which a header loses: %q %q", slash, rfcEdge)
		}
		got, err := parseSlashDN(slash)
		if err != nil {
			t.Fatalf("parse %q: %v", slash, err)
		}
		var want []slashAttr
		for i, rdn := range rdns {
			for _, a := range rdn {
				name, _ := attrName(a.OID)
				want = append(want, slashAttr{RDN: i, Type: name, Value: a.Value})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q reads back differently (-built +parsed):\n%s", slash, diff)
		}
	})
}
