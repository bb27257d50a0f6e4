package validate

import (
	"sort"
	"strings"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// Desired returns the normalized resources of a valid result, in dependency
// order then by name: defaults filled in (so an unchanged manifest never
// shows a diff), certificate, CA and CRL PEMs inlined, private keys only as
// their reference (a file path made absolute on this machine, or an
// environment variable name) plus the public-key fingerprint. Test suites
// are not deployed. It suits an edge compiled here, such as edgectl test's
// in-process edge; the state holds StateResources.
func (r *Result) Desired() []state.Resource { return r.desired(false) }

// StateResources returns the resources as plan and apply store them: as
// Desired, but a relative privateKeyFile stays relative, to the manifest
// root (the -f directory or the file's own directory), so that the same
// manifests planned from any checkout path give the same state. edgectl
// serve resolves such references against its --key-dir.
func (r *Result) StateResources() []state.Resource { return r.desired(true) }

func (r *Result) desired(portable bool) []state.Resource {
	var out []state.Resource
	for _, kind := range manifest.Kinds {
		names := make([]string, 0, len(r.Resources[kind]))
		for n := range r.Resources[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			res := r.Resources[kind][n]
			out = append(out, state.Resource{
				Kind:   kind,
				Name:   n,
				Labels: res.Doc.Metadata.Labels,
				Spec:   normalize(res, portable),
			})
		}
	}
	return out
}

// Normalize returns a copy of the resource's spec with defaults filled in and
// file references replaced by their content (a private-key file reference
// made absolute).
func Normalize(res *Resource) any { return normalize(res, false) }

func normalize(res *Resource, portable bool) any {
	doc := res.Doc
	switch spec := doc.Spec.(type) {
	case *manifest.CertificateSpec:
		n := manifest.CertificateSpec{
			Certificate:          res.CertPEM,
			PrivateKeyEnv:        spec.PrivateKeyEnv,
			PublicKeyFingerprint: res.KeyFingerprint,
		}
		switch {
		case spec.PrivateKeyFile == "":
		case portable:
			n.PrivateKeyFile = doc.Portable(spec.PrivateKeyFile)
		default:
			n.PrivateKeyFile = doc.Resolve(spec.PrivateKeyFile)
		}
		return &n
	case *manifest.TrustedCASpec:
		depth := manifest.DefaultVerifyDepth
		if spec.VerifyDepth != nil {
			depth = *spec.VerifyDepth
		}
		return &manifest.TrustedCASpec{Certificate: res.CertPEM, CRL: res.CRLPEM, VerifyDepth: &depth}
	case *manifest.NetworkListSpec:
		n := *spec
		n.Items = append([]string(nil), spec.Items...)
		return &n
	case *manifest.ApplicationSpec:
		n := manifest.ApplicationSpec{
			Origin: spec.Origin, MaxRequestBodySize: spec.MaxRequestBodySize,
			RequestBuffering: spec.RequestBuffering, Paths: spec.Paths,
			UnderscoresInHeaders: spec.UnderscoresInHeaders,
		}
		o := &n.Origin
		o.HostHeader = or(o.HostHeader, manifest.DefaultHostHeader)
		o.ConnectTimeout = canonicalDuration(o.ConnectTimeout, manifest.DefaultConnectTimeout)
		o.ResponseTimeout = canonicalDuration(o.ResponseTimeout, manifest.DefaultResponseTimeout)
		if spec.Origin.TLS != nil {
			t := *spec.Origin.TLS
			t.CA, t.CAFile = res.OriginCAPEM, ""
			o.TLS = &t
		}
		for _, rule := range spec.Rules {
			rule.Phase = or(rule.Phase, manifest.PhaseRequest)
			rule.Active = boolOr(rule.Active, true)
			rule.Criteria = normalizeCriteria(rule.Criteria)
			n.Rules = append(n.Rules, rule)
		}
		return &n
	case *manifest.FirewallSpec:
		n := manifest.FirewallSpec{}
		for _, rule := range spec.Rules {
			rule.Active = boolOr(rule.Active, true)
			rule.Criteria = normalizeCriteria(rule.Criteria)
			bs := make([]manifest.FirewallBehavior, len(rule.Behaviors))
			for i, b := range rule.Behaviors {
				if b.SetRateLimit != nil {
					rl := *b.SetRateLimit
					if rl.MaximumBurstSize == 0 {
						rl.MaximumBurstSize = rl.AverageRateLimit
					}
					b.SetRateLimit = &rl
				}
				if b.SetCustomResponse != nil {
					cr := *b.SetCustomResponse
					cr.ContentType = or(cr.ContentType, "text/plain; charset=utf-8")
					b.SetCustomResponse = &cr
				}
				bs[i] = b
			}
			rule.Behaviors = bs
			n.Rules = append(n.Rules, rule)
		}
		return &n
	case *manifest.DomainSpec:
		n := *spec
		n.Hostnames = make([]string, len(spec.Hostnames))
		for i, h := range spec.Hostnames {
			n.Hostnames[i] = strings.ToLower(h)
		}
		sort.Strings(n.Hostnames)
		switch m := spec.MTLS; {
		case m == nil || !m.Enabled:
			n.MTLS = nil
		default:
			n.MTLS = &manifest.MTLS{Enabled: true, Verification: or(m.Verification, manifest.VerificationEnforce), TrustedCA: m.TrustedCA}
		}
		return &n
	}
	return doc.Spec
}

// normalizeCriteria spells out the implicit "if" of each group's first entry.
func normalizeCriteria(groups [][]manifest.Criterion) [][]manifest.Criterion {
	if groups == nil {
		return nil
	}
	out := make([][]manifest.Criterion, len(groups))
	for i, g := range groups {
		out[i] = append([]manifest.Criterion(nil), g...)
		if len(out[i]) > 0 && out[i][0].Conditional == "" {
			out[i][0].Conditional = "if"
		}
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func boolOr(b *bool, def bool) *bool {
	if b != nil {
		v := *b
		return &v
	}
	return &def
}

// canonicalDuration writes a duration the way time.Duration prints it, so
// that 60s and 1m do not show as a change.
func canonicalDuration(d, def manifest.Duration) manifest.Duration {
	if d == "" {
		d = def
	}
	v, err := d.Parse()
	if err != nil {
		return d
	}
	return manifest.Duration(time.Duration(v).String())
}
