package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// NetworkList is a compiled set of IP networks. Its zero value is an empty
// list. It is immutable and safe for concurrent use.
type NetworkList struct {
	prefixes []netip.Prefix
	// ranges are the prefixes merged into sorted, disjoint address ranges
	// (IPv4 before IPv6), searched by binary search.
	ranges []addrRange
}

type addrRange struct{ first, last netip.Addr }

// CompileNetworkList compiles a NetworkList spec. Single addresses become /32
// or /128 prefixes. Problems carry paths such as "spec.items[3]".
func CompileNetworkList(spec *manifest.NetworkListSpec) (*NetworkList, []FieldError) {
	var errs []FieldError
	if spec.Type != "ipCidr" {
		errs = append(errs, FieldError{Path: "spec.type", Message: fmt.Sprintf("unsupported network list type %q; the only type is ipCidr", spec.Type)})
	}
	l := &NetworkList{}
	for i, item := range spec.Items {
		path := fmt.Sprintf("spec.items[%d]", i)
		p, msg, warn := parseNetwork(strings.TrimSpace(item))
		if msg != "" {
			errs = append(errs, FieldError{Path: path, Message: msg, Warning: warn})
			if !warn {
				continue
			}
		}
		l.prefixes = append(l.prefixes, p)
	}
	l.build()
	return l, errs
}

func parseNetwork(item string) (netip.Prefix, string, bool) {
	if strings.Contains(item, "%") {
		return netip.Prefix{}, fmt.Sprintf("%q: zoned addresses are not allowed", item), false
	}
	if !strings.Contains(item, "/") {
		a, err := netip.ParseAddr(item)
		if err != nil {
			return netip.Prefix{}, fmt.Sprintf("%q is not an IP address or CIDR prefix", item), false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), "", false
	}
	p, err := netip.ParsePrefix(item)
	if err != nil {
		return netip.Prefix{}, fmt.Sprintf("%q is not a valid CIDR prefix", item), false
	}
	n := normalizePrefix(p)
	if p.Masked() != p {
		return n, fmt.Sprintf("%q has host bits set; it means %s", item, n), true
	}
	return n, "", false
}

// normalizePrefix masks host bits and turns IPv4-mapped IPv6 prefixes of
// at least 96 bits into IPv4 prefixes.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func (l *NetworkList) build() {
	rs := make([]addrRange, 0, len(l.prefixes))
	for _, p := range l.prefixes {
		rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.first.Compare(b.first) })
	merged := rs[:0]
	for _, r := range rs {
		if n := len(merged); n > 0 {
			prev := &merged[n-1]
			next := prev.last.Next()
			if r.first.Compare(prev.last) <= 0 || next.IsValid() && r.first == next {
				if r.last.Compare(prev.last) > 0 {
					prev.last = r.last
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	l.ranges = merged
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// Contains reports whether a belongs to one of the list's networks. An
// IPv4-mapped IPv6 address is looked up as IPv4. It does not allocate.
func (l *NetworkList) Contains(a netip.Addr) bool {
	if l == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	rs := l.ranges
	lo, hi := 0, len(rs)
	for lo < hi { // first range whose first address is above a
		m := int(uint(lo+hi) >> 1)
		if rs[m].first.Compare(a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && a.Compare(rs[lo-1].last) <= 0 && a.BitLen() == rs[lo-1].last.BitLen()
}
