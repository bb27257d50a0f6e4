package rules

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func TestCompileNetworkList(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		spec       manifest.NetworkListSpec
		wantErrs   []FieldError
		wantPrefix []string
	}{
		"IPv4, IPv6 and single addresses": {
			spec:       manifest.NetworkListSpec{Type: "ipCidr", Items: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "2001:db8:ffff::1", "::ffff:198.51.100.1"}},
			wantPrefix: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32", "2001:db8:ffff::1/128", "198.51.100.1/32"},
		},
		"errors and warnings": {
			spec: manifest.NetworkListSpec{Type: "ipRange", Items: []string{"10.0.0.1/8", "10.0.0.0/33", "not-an-ip", "fe80::1%eth0", "300.1.1.1"}},
			wantErrs: []FieldError{
				{Path: "spec.type", Message: `unsupported network list type "ipRange"; the only type is ipCidr`},
				{Path: "spec.items[0]", Message: `"10.0.0.1/8" has host bits set; it means 10.0.0.0/8`, Warning: true},
				{Path: "spec.items[1]", Message: `"10.0.0.0/33" is not a valid CIDR prefix`},
				{Path: "spec.items[2]", Message: `"not-an-ip" is not an IP address or CIDR prefix`},
				{Path: "spec.items[3]", Message: `"fe80::1%eth0": zoned addresses are not allowed`},
				{Path: "spec.items[4]", Message: `"300.1.1.1" is not an IP address or CIDR prefix`},
			},
			wantPrefix: []string{"10.0.0.0/8"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			l, errs := CompileNetworkList(&tt.spec)
			if diff := cmp.Diff(tt.wantErrs, errs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			var got []string
			for _, p := range l.prefixes {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.wantPrefix, got); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetworkListContains(t *testing.T) {
	t.Parallel()
	l, errs := CompileNetworkList(&manifest.NetworkListSpec{Type: "ipCidr", Items: []string{
		"10.0.0.0/8", "10.1.0.0/16", "192.0.2.7", "192.0.2.8/31", "2001:db8::/32", "2001:db8:1::/48", "::1", "0.0.0.0/32",
	}})
	if errs != nil {
		t.Fatal(errs)
	}
	addrs := []string{
		"10.0.0.0", "10.255.255.255", "11.0.0.0", "9.255.255.255", "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9", "192.0.2.10",
		"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "2001:db7:ffff::", "::1", "::2",
		"::ffff:10.2.3.4", "0.0.0.0", "::",
	}
	got := map[string]bool{}
	for _, a := range addrs {
		got[a] = l.Contains(netip.MustParseAddr(a))
	}
	want := map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.0.2.6": false, "192.0.2.7": true, "192.0.2.8": true, "192.0.2.9": true, "192.0.2.10": false,
		"2001:db8::": true, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": true, "2001:db9::": false, "2001:db7:ffff::": false,
		"::1": true, "::2": false, "::ffff:10.2.3.4": true, "0.0.0.0": true, "::": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var empty NetworkList
	var nilList *NetworkList
	if empty.Contains(netip.MustParseAddr("10.0.0.1")) || nilList.Contains(netip.MustParseAddr("10.0.0.1")) || l.Contains(netip.Addr{}) {
		t.Error("empty, nil lists and invalid addresses contain nothing")
	}
}

func BenchmarkNetworkListContains(b *testing.B) {
	var ps []netip.Prefix
	for i := range 1000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	l := newNetworkList(ps...)
	a := netip.MustParseAddr("10.3.200.7")
	b.ReportAllocs()
	for b.Loop() {
		if !l.Contains(a) {
			b.Fatal("not found")
		}
	}
}

// newNetworkList returns a list of the given prefixes, built without a
// manifest.
func newNetworkList(prefixes ...netip.Prefix) *NetworkList {
	l := &NetworkList{}
	for _, p := range prefixes {
		l.prefixes = append(l.prefixes, normalizePrefix(p))
	}
	l.build()
	return l
}
