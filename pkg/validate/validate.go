package validate

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/rules"
	"github.com/edgectl/edgectl/pkg/state"
)

// ExpiryWarning is how close to expiry a certificate must be for a warning.
const ExpiryWarning = 30 * 24 * time.Hour

// Options tunes validation.
type Options struct {
	// Now is the time certificates and CRLs are checked against (default time.Now).
	Now time.Time
	// LookupEnv reads environment variables named by privateKeyEnv (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// ReadFile reads files referenced by manifests (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
}

// Result is what validation found.
type Result struct {
	// Diags holds every problem, unsorted; see diag.List.Normalized.
	Diags diag.List
	// Resources holds the deployable documents (every kind but TestSuite) that
	// passed every check, keyed by kind then name, with the material they
	// reference loaded. It is complete only when Diags has no error.
	Resources map[string]map[string]*Resource
	// Suites holds the TestSuite documents that passed every check.
	Suites []*manifest.Document
}

// Resource is a checked document with the material it references.
type Resource struct {
	Doc *manifest.Document
	// CertPEM is the certificate chain (Certificate) or CA bundle (TrustedCA) as PEM.
	CertPEM string
	// Certs are the parsed certificates of CertPEM.
	Certs []*x509.Certificate
	// CRLPEM holds the TrustedCA's revocation lists, PEM encoded.
	CRLPEM string
	// OriginCAPEM is an Application's origin CA bundle, when it has one.
	OriginCAPEM string
	// KeyFingerprint is the SHA-256 fingerprint of the leaf's public key (Certificate).
	KeyFingerprint string
}

// Validate checks docs and returns every problem found.
func Validate(docs []*manifest.Document, opts Options) *Result {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	c := &checker{opts: opts, byKind: map[string]map[string]*entry{}}
	c.index(docs)
	// Dependency order: what a kind refers to is checked before it.
	for _, kind := range manifest.Kinds {
		for _, e := range c.ordered[kind] {
			strictBad := e.res.Doc.SpecErr != nil && len(e.schemaBad) == 0
			if strictBad {
				// The schema accepted what the Go types refuse: never silent.
				e.res.Doc.Errorf(&c.diags, "spec", "%v", e.res.Doc.SpecErr)
			}
			if e.res.Doc.Spec == nil {
				continue // the schema reported why
			}
			before := len(c.diags)
			c.check(e)
			added := c.diags[before:]
			if len(e.schemaBad) > 0 {
				// Still check what the schema did not already reject, so that
				// every problem shows in one run.
				kept := added[:0]
				for _, d := range added {
					if !overlaps(d.Path, e.schemaBad) {
						kept = append(kept, d)
					}
				}
				c.diags = c.diags[:before+len(kept)]
				added = kept
			}
			e.ok = len(e.schemaBad) == 0 && !strictBad && added.Count(diag.Error) == 0
		}
	}
	res := &Result{Diags: c.diags, Resources: map[string]map[string]*Resource{}}
	defer res.compile()
	for _, kind := range manifest.Kinds {
		for _, e := range c.ordered[kind] {
			if !e.ok || e.duplicate {
				continue
			}
			if kind == manifest.KindTestSuite {
				res.Suites = append(res.Suites, e.res.Doc)
				continue
			}
			if res.Resources[kind] == nil {
				res.Resources[kind] = map[string]*Resource{}
			}
			res.Resources[kind][e.res.Doc.Name()] = e.res
		}
	}
	return res
}

// compile runs the serve compiler over the desired snapshot of a valid
// result, so that what validates will serve; a problem it finds becomes an
// error at the resource it names. Private keys are not loaded (they may
// live only where serve runs).
func (r *Result) compile() {
	if r.Diags.HasErrors() {
		return
	}
	rt, err := edge.Compile(&state.Snapshot{Resources: r.Desired()}, edge.Options{SkipKeys: true})
	if err == nil {
		rt.Close()
		return
	}
	ce, ok := err.(*edge.CompileError)
	if !ok {
		r.Diags.Errorf(diag.Pos{}, "", "internal error: %v", err)
		return
	}
	for _, p := range ce.Problems {
		if res := r.Resources[p.Kind][p.Name]; res != nil {
			res.Doc.Errorf(&r.Diags, p.Path, "%s", p.Message)
		} else {
			r.Diags.Errorf(diag.Pos{}, "", "%s/%s: %s", p.Kind, p.Name, p.Message)
		}
	}
}

type entry struct {
	res *Resource
	// schemaBad are the field paths the schema rejected.
	schemaBad []string
	ok        bool
	duplicate bool

	netlist  *rules.NetworkList
	firewall *rules.Firewall
}

type checker struct {
	opts    Options
	diags   diag.List
	byKind  map[string]map[string]*entry
	ordered map[string][]*entry
	// hostnames maps a lowercase hostname to the domain document that claimed it first.
	hostnames map[string]*manifest.Document
}

func (c *checker) index(docs []*manifest.Document) {
	c.ordered = map[string][]*entry{}
	for _, d := range docs {
		e := &entry{res: &Resource{Doc: d}, schemaBad: checkSchema(d, &c.diags)}
		if manifest.NewSpec(d.Kind) == nil || d.Name() == "" {
			continue // the schema reported it
		}
		names := c.byKind[d.Kind]
		if names == nil {
			names = map[string]*entry{}
			c.byKind[d.Kind] = names
		}
		if first, dup := names[d.Name()]; dup {
			d.Errorf(&c.diags, "metadata.name", "%s %q is already defined at %s", d.Kind, d.Name(), where(d, first.res.Doc.Pos("metadata.name")))
			e.duplicate = true
		} else {
			names[d.Name()] = e
		}
		c.ordered[d.Kind] = append(c.ordered[d.Kind], e)
	}
}

func (c *checker) check(e *entry) {
	switch spec := e.res.Doc.Spec.(type) {
	case *manifest.CertificateSpec:
		c.certificate(e, spec)
	case *manifest.TrustedCASpec:
		c.trustedCA(e, spec)
	case *manifest.NetworkListSpec:
		var errs []rules.FieldError
		e.netlist, errs = rules.CompileNetworkList(spec)
		c.fieldErrors(e.res.Doc, errs)
	case *manifest.ApplicationSpec:
		c.application(e, spec)
	case *manifest.FirewallSpec:
		var errs []rules.FieldError
		e.firewall, errs = rules.CompileFirewall(spec, c.networkLists())
		c.fieldErrors(e.res.Doc, errs)
	case *manifest.DomainSpec:
		c.domain(e, spec)
	case *manifest.TestSuiteSpec:
		c.testSuite(e, spec)
	}
}

func (c *checker) fieldErrors(doc *manifest.Document, errs []rules.FieldError) {
	for _, fe := range errs {
		msg := teachVariable(doc, fe.Path, fe.Message)
		if fe.Warning {
			doc.Warnf(&c.diags, fe.Path, "%s", msg)
		} else {
			doc.Errorf(&c.diags, fe.Path, "%s", msg)
		}
	}
}

// networkLists returns the compiled network lists checked so far (all of
// them: NetworkList comes before Application and Firewall in dependency order).
func (c *checker) networkLists() map[string]*rules.NetworkList {
	out := map[string]*rules.NetworkList{}
	for name, e := range c.byKind[manifest.KindNetworkList] {
		if e.netlist != nil {
			out[name] = e.netlist
		} else {
			// Referenced lists that failed their own checks still resolve, so
			// that one mistake is not reported twice.
			out[name] = &rules.NetworkList{}
		}
	}
	return out
}

// readRef reads a file referenced at path, reporting a diagnostic on failure.
func (c *checker) readRef(doc *manifest.Document, path, ref string) ([]byte, bool) {
	data, err := c.opts.ReadFile(doc.Resolve(ref))
	if err != nil {
		doc.Errorf(&c.diags, path, "cannot read %q: %v", ref, unwrap(err))
		return nil, false
	}
	return data, true
}

func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// pemSource returns the PEM of an inline-or-file pair and the path to blame.
func (c *checker) pemSource(doc *manifest.Document, inline, file, inlineField, fileField string) ([]byte, string, bool) {
	if inline != "" {
		return []byte(inline), "spec." + inlineField, true
	}
	data, ok := c.readRef(doc, "spec."+fileField, file)
	return data, "spec." + fileField, ok
}

func (c *checker) certificate(e *entry, spec *manifest.CertificateSpec) {
	doc := e.res.Doc
	data, at, ok := c.pemSource(doc, spec.Certificate, spec.CertificateFile, "certificate", "certificateFile")
	if !ok {
		return
	}
	if pki.ContainsPrivateKey(data) {
		if spec.Certificate != "" {
			doc.Errorf(&c.diags, at, "inline private keys are refused: keys do not belong in Git; use privateKeyFile or privateKeyEnv")
			return
		}
		doc.Warnf(&c.diags, at, "%q also holds a private key, which edgectl ignores; keep keys out of Git", spec.CertificateFile)
		data = pki.WithoutPrivateKeys(data)
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		doc.Errorf(&c.diags, at, "%v", err)
		return
	}
	e.res.Certs, e.res.CertPEM = certs, encodeCerts(certs)
	leaf := certs[0]
	c.expiry(doc, at, "certificate", leaf)
	fp, err := pki.PublicKeyFingerprint(leaf.PublicKey)
	if err != nil {
		doc.Errorf(&c.diags, at, "unsupported public key: %v", err)
		return
	}
	e.res.KeyFingerprint = fp

	var keyPEM []byte
	keyAt := "spec.privateKeyFile"
	switch {
	case spec.PrivateKeyFile != "":
		data, err := c.opts.ReadFile(doc.Resolve(spec.PrivateKeyFile))
		if err != nil {
			// Keys usually live only on edge nodes, not where CI validates.
			doc.Warnf(&c.diags, keyAt, "cannot read %q (%v); the key is not checked here and must exist where edgectl serve runs", spec.PrivateKeyFile, unwrap(err))
			return
		}
		keyPEM = data
	case spec.PrivateKeyEnv != "":
		keyAt = "spec.privateKeyEnv"
		v, ok := c.opts.LookupEnv(spec.PrivateKeyEnv)
		if !ok || v == "" {
			doc.Warnf(&c.diags, keyAt, "environment variable %s is not set here; the key is not checked and must be set where edgectl serve runs", spec.PrivateKeyEnv)
			return
		}
		keyPEM = []byte(v)
	default:
		return // the schema requires one of them
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	if err != nil {
		doc.Errorf(&c.diags, keyAt, "%v", err)
		return
	}
	if !pki.KeyMatchesCertificate(key, leaf) {
		doc.Errorf(&c.diags, keyAt, "private key does not match the certificate %q", leaf.Subject.CommonName)
	}
}

// expiry reports an expired certificate as an error and one expiring soon as a warning.
func (c *checker) expiry(doc *manifest.Document, at, what string, cert *x509.Certificate) {
	name := certName(cert)
	switch now := c.opts.Now; {
	case now.After(cert.NotAfter):
		doc.Errorf(&c.diags, at, "%s %s expired on %s", what, name, cert.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(cert.NotBefore):
		doc.Errorf(&c.diags, at, "%s %s is not valid before %s", what, name, cert.NotBefore.UTC().Format(time.RFC3339))
	case cert.NotAfter.Sub(now) < ExpiryWarning:
		doc.Warnf(&c.diags, at, "%s %s expires in %d days, on %s", what, name, int(cert.NotAfter.Sub(now).Hours()/24), cert.NotAfter.UTC().Format(time.DateOnly))
	}
}

func certName(cert *x509.Certificate) string {
	if cert.Subject.CommonName != "" {
		return fmt.Sprintf("%q", cert.Subject.CommonName)
	}
	return fmt.Sprintf("%q", cert.Subject.String())
}

func (c *checker) trustedCA(e *entry, spec *manifest.TrustedCASpec) {
	doc := e.res.Doc
	data, at, ok := c.pemSource(doc, spec.Certificate, spec.CertificateFile, "certificate", "certificateFile")
	if !ok {
		return
	}
	if pki.ContainsPrivateKey(data) {
		doc.Errorf(&c.diags, at, "a CA bundle must not hold a private key; keys do not belong in Git")
		return
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		doc.Errorf(&c.diags, at, "%v", err)
		return
	}
	e.res.Certs, e.res.CertPEM = certs, encodeCerts(certs)
	for i, cert := range certs {
		if !cert.BasicConstraintsValid || !cert.IsCA {
			doc.Errorf(&c.diags, at, "certificate %d of the bundle (%s) is not a CA; a trusted CA bundle holds only CA certificates", i+1, certName(cert))
			continue
		}
		c.expiry(doc, at, "CA certificate", cert)
	}

	var crls [][]byte
	var crlAt []string
	if spec.CRL != "" {
		crls, crlAt = append(crls, []byte(spec.CRL)), append(crlAt, "spec.crl")
	}
	for i, f := range spec.CRLFiles {
		p := fmt.Sprintf("spec.crlFiles[%d]", i)
		if data, ok := c.readRef(doc, p, f); ok {
			crls, crlAt = append(crls, data), append(crlAt, p)
		}
	}
	var crlPEM strings.Builder
	for i, data := range crls {
		list, err := pki.ParseCRLs(data)
		if err != nil {
			doc.Errorf(&c.diags, crlAt[i], "%v", err)
			continue
		}
		for _, crl := range list {
			if _, ok := pki.CRLSignedBy(crl, certs); !ok {
				doc.Errorf(&c.diags, crlAt[i], "CRL issued by %q is not signed by any CA of the bundle", crl.Issuer.String())
				continue
			}
			if !crl.NextUpdate.IsZero() && c.opts.Now.After(crl.NextUpdate) {
				doc.Errorf(&c.diags, crlAt[i], "CRL issued by %q expired on %s (nextUpdate); publish a fresh CRL", crl.Issuer.String(), crl.NextUpdate.UTC().Format(time.RFC3339))
				continue
			}
			crlPEM.WriteString(encodePEM("X509 CRL", crl.Raw))
		}
	}
	e.res.CRLPEM = crlPEM.String()
}

func (c *checker) application(e *entry, spec *manifest.ApplicationSpec) {
	doc := e.res.Doc
	o := spec.Origin
	u, err := url.Parse(o.URL)
	switch {
	case err != nil:
		doc.Errorf(&c.diags, "spec.origin.url", "invalid URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		doc.Errorf(&c.diags, "spec.origin.url", "origin URL must use http or https, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		doc.Errorf(&c.diags, "spec.origin.url", "origin URL %q has no host", o.URL)
	case u.User != nil:
		doc.Errorf(&c.diags, "spec.origin.url", "origin URL must not hold credentials; they would be stored in the state")
	case u.RawQuery != "" || u.Fragment != "":
		doc.Errorf(&c.diags, "spec.origin.url", "origin URL must not have a query or fragment")
	}
	for _, d := range []struct {
		path string
		v    manifest.Duration
	}{{"spec.origin.connectTimeout", o.ConnectTimeout}, {"spec.origin.responseTimeout", o.ResponseTimeout}, {"spec.origin.queueTimeout", o.QueueTimeout}} {
		if d.v == "" {
			continue
		}
		if v, err := d.v.Parse(); err != nil || v <= 0 {
			doc.Errorf(&c.diags, d.path, "%q is not a positive duration such as 5s or 1m30s", d.v)
		}
	}
	c.limits(doc, spec)
	if t := o.TLS; t != nil {
		if u != nil && u.Scheme == "http" {
			doc.Warnf(&c.diags, "spec.origin.tls", "tls settings have no effect on an http origin")
		}
		if t.InsecureSkipVerify {
			doc.Warnf(&c.diags, "spec.origin.tls.insecureSkipVerify", "the origin's certificate is not verified; use caFile instead outside of tests")
		}
		if t.CA != "" || t.CAFile != "" {
			if data, at, ok := c.pemSource(doc, t.CA, t.CAFile, "origin.tls.ca", "origin.tls.caFile"); ok {
				if certs, err := pki.ParseCertificates(data); err != nil {
					doc.Errorf(&c.diags, at, "%v", err)
				} else {
					e.res.OriginCAPEM = encodeCerts(certs)
				}
			}
		}
	}
	if o.HostHeader != "" {
		c.fieldErrors(doc, rules.CheckTemplate("spec.origin.hostHeader", o.HostHeader, manifest.PhaseRequest))
	}
	_, errs := rules.CompileApplication(spec, c.networkLists())
	c.fieldErrors(doc, errs)
}

// limits checks an application's bounds and policies (the schema checks
// their types and enums).
func (c *checker) limits(doc *manifest.Document, spec *manifest.ApplicationSpec) {
	o := spec.Origin
	if o.MaxConnections != nil && *o.MaxConnections < 1 {
		doc.Errorf(&c.diags, "spec.origin.maxConnections", "must be at least 1, not %d", *o.MaxConnections)
	}
	if o.MaxQueue != nil && *o.MaxQueue < 0 {
		doc.Errorf(&c.diags, "spec.origin.maxQueue", "must not be negative (0 queues no request), not %d", *o.MaxQueue)
	}
	maxBody := int64(-1)
	if spec.MaxRequestBodySize != "" {
		if n, err := spec.MaxRequestBodySize.Parse(); err != nil {
			doc.Errorf(&c.diags, "spec.maxRequestBodySize", "%v", err)
		} else {
			maxBody = n
		}
	}
	if b := spec.RequestBuffering; b != nil && b.Size != "" {
		switch n, err := b.Size.Parse(); {
		case err != nil:
			doc.Errorf(&c.diags, "spec.requestBuffering.size", "%v", err)
		case n < 1:
			doc.Errorf(&c.diags, "spec.requestBuffering.size", "must be at least 1 byte; turn buffering off with enabled: false")
		case n > manifest.MaxRequestBufferingSize:
			doc.Errorf(&c.diags, "spec.requestBuffering.size", "%s is over the largest buffer, 64MiB: buffers are memory, one per request being uploaded", b.Size)
		case maxBody > 0 && n > maxBody:
			doc.Warnf(&c.diags, "spec.requestBuffering.size", "%s is larger than maxRequestBodySize (%s); no more than maxRequestBodySize is ever buffered", b.Size, spec.MaxRequestBodySize)
		case b.Enabled != nil && !*b.Enabled:
			doc.Warnf(&c.diags, "spec.requestBuffering.size", "has no effect while buffering is off (enabled: false)")
		}
	}
	if p := spec.Paths; p != nil && p.Origin == manifest.OriginPathOriginal {
		doc.Warnf(&c.diags, "spec.paths.origin", "the origin receives the path as the client sent it, which the firewall and the rules never saw: an origin that resolves dot segments or merges slashes may serve a path a rule denied")
	}
}

func (c *checker) lookupRef(doc *manifest.Document, path, kind, name string) *entry {
	e, ok := c.byKind[kind][name]
	if !ok {
		var names []string
		for n := range c.byKind[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		hint := ""
		if best := diag.Closest(name, names); best != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", best)
		} else if len(names) == 0 {
			hint = fmt.Sprintf("; no %s is defined", kind)
		}
		doc.Errorf(&c.diags, path, "%s %q not found%s", kind, name, hint)
		return nil
	}
	return e
}

func (c *checker) domain(e *entry, spec *manifest.DomainSpec) {
	doc := e.res.Doc
	if c.hostnames == nil {
		c.hostnames = map[string]*manifest.Document{}
	}
	var hosts []string
	for i, h := range spec.Hostnames {
		p := fmt.Sprintf("spec.hostnames[%d]", i)
		if err := CheckHostname(h); err != nil {
			doc.Errorf(&c.diags, p, "%v", err)
			continue
		}
		lh := strings.ToLower(h)
		if first, taken := c.hostnames[lh]; taken {
			if first == doc {
				doc.Errorf(&c.diags, p, "hostname %q is listed twice", h)
			} else {
				doc.Errorf(&c.diags, p, "hostname %q already belongs to Domain %q (%s); a hostname belongs to one domain only", h, first.Name(), where(doc, first.Pos("spec.hostnames")))
			}
			continue
		}
		c.hostnames[lh] = doc
		hosts = append(hosts, lh)
	}
	if cert := c.lookupRef(doc, "spec.certificate", manifest.KindCertificate, spec.Certificate); cert != nil && cert.ok && len(cert.res.Certs) > 0 {
		leaf := cert.res.Certs[0]
		for _, h := range hosts {
			if !pki.CoversHostname(leaf, h) {
				doc.Errorf(&c.diags, "spec.certificate", "Certificate %q does not cover hostname %q (its names: %s)", spec.Certificate, h, strings.Join(leaf.DNSNames, ", "))
			}
		}
	}
	c.lookupRef(doc, "spec.application", manifest.KindApplication, spec.Application)
	var fw *entry
	if spec.Firewall != "" {
		fw = c.lookupRef(doc, "spec.firewall", manifest.KindFirewall, spec.Firewall)
	}
	m := spec.MTLS
	if m == nil || !m.Enabled {
		if m != nil && (m.TrustedCA != "" || m.Verification != "") {
			doc.Warnf(&c.diags, "spec.mtls.enabled", "mTLS settings are ignored while enabled is false")
		}
		return
	}
	c.lookupRef(doc, "spec.mtls.trustedCA", manifest.KindTrustedCA, m.TrustedCA)
	if m.Verification == manifest.VerificationPermissive && (fw == nil || fw.firewall == nil || !fw.firewall.CanDenyUnverified()) {
		if fw == nil || fw.ok {
			doc.Warnf(&c.diags, "spec.mtls.verification", "permissive mode admits clients without a valid certificate, and no firewall rule of this domain denies them (test client_certificate_validation or ssl_verification_status); a misconfigured permissive domain is a security incident")
		}
	}
}

// where names pos as seen from the document from: "line 12:3" in the same
// file, else the file relative to from's directory.
func where(from *manifest.Document, pos diag.Pos) string {
	if pos.File == from.File {
		return fmt.Sprintf("line %d:%d", pos.Line, pos.Column)
	}
	file := pos.File
	if rel, err := filepath.Rel(from.Dir, file); err == nil && filepath.IsAbs(file) {
		file = rel
	}
	return fmt.Sprintf("%s:%d:%d", file, pos.Line, pos.Column)
}

// CheckHostname checks a domain hostname: DNS labels of letters, digits and
// hyphens, a wildcard only as the whole left-most label.
func CheckHostname(h string) error {
	if h == "" {
		return fmt.Errorf("hostname is empty")
	}
	if strings.HasSuffix(h, ".") {
		return fmt.Errorf("hostname %q must not end with a dot", h)
	}
	if len(h) > 253 {
		return fmt.Errorf("hostname %q is longer than 253 characters", h)
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if l == "*" {
			if i != 0 {
				return fmt.Errorf("hostname %q: a wildcard is allowed only as the whole left-most label", h)
			}
			if len(labels) < 3 {
				return fmt.Errorf("hostname %q: a wildcard needs at least two labels after it", h)
			}
			continue
		}
		if strings.Contains(l, "*") {
			return fmt.Errorf("hostname %q: a wildcard is allowed only as the whole left-most label", h)
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("hostname %q has an empty or over-long label", h)
		}
		for j := 0; j < len(l); j++ {
			ch := l[j]
			ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-'
			if !ok {
				return fmt.Errorf("hostname %q has an invalid character %q", h, ch)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("hostname %q: a label must not start or end with a hyphen", h)
		}
	}
	return nil
}

func (c *checker) testSuite(e *entry, spec *manifest.TestSuiteSpec) {
	doc := e.res.Doc
	if spec.CAFile != "" {
		if data, ok := c.readRef(doc, "spec.caFile", spec.CAFile); ok {
			if _, err := pki.ParseCertificates(data); err != nil {
				doc.Errorf(&c.diags, "spec.caFile", "%v", err)
			}
		}
	}
	names := map[string]int{}
	for i, tc := range spec.Cases {
		p := fmt.Sprintf("spec.cases[%d]", i)
		if j, dup := names[tc.Name]; dup {
			doc.Errorf(&c.diags, p+".name", "case name %q is already used by case %d", tc.Name, j+1)
		}
		names[tc.Name] = i
		if err := CheckHostname(tc.ServerName); err != nil && !strings.Contains(tc.ServerName, "*") {
			// Test cases may send odd names on purpose (trailing dot, case);
			// only reject what cannot be a server name at all.
			if strings.ContainsAny(tc.ServerName, " /:@") {
				doc.Errorf(&c.diags, p+".serverName", "%v", err)
			}
		}
		if cc := tc.ClientCertificate; cc != nil {
			cert, ok1 := c.readRef(doc, p+".clientCertificate.certificateFile", cc.CertificateFile)
			key, ok2 := c.readRef(doc, p+".clientCertificate.privateKeyFile", cc.PrivateKeyFile)
			if ok1 && ok2 {
				certs, err := pki.ParseCertificates(cert)
				if err != nil {
					doc.Errorf(&c.diags, p+".clientCertificate.certificateFile", "%v", err)
				} else if k, err := pki.ParsePrivateKey(key); err != nil {
					doc.Errorf(&c.diags, p+".clientCertificate.privateKeyFile", "%v", err)
				} else if !pki.KeyMatchesCertificate(k, certs[0]) {
					doc.Errorf(&c.diags, p+".clientCertificate.privateKeyFile", "private key does not match the certificate")
				}
			}
		}
		ex := tc.Expect
		if ex.Handshake == "rejected" {
			if ex.Status != 0 || len(ex.Headers) > 0 || ex.Body != "" || len(ex.OriginHeaders) > 0 {
				doc.Errorf(&c.diags, p+".expect", "a rejected handshake has no HTTP response: drop status, headers, body and originHeaders")
			}
			if ex.OriginReached != nil && *ex.OriginReached {
				doc.Errorf(&c.diags, p+".expect.originReached", "a rejected handshake cannot reach the origin")
			}
		} else if ex.Alert != "" {
			doc.Errorf(&c.diags, p+".expect.alert", "an alert is expected only with handshake: rejected")
		}
		if ex.Alert != "" {
			checkAlert(doc, &c.diags, p+".expect.alert", ex.Alert)
		}
		for _, kv := range []struct {
			field string
			m     map[string]string
		}{{"headers", ex.Headers}, {"originHeaders", ex.OriginHeaders}} {
			for name, v := range kv.m {
				at := p + ".expect." + kv.field + "." + name
				if !checkHeaderName(doc, &c.diags, at, name) {
					continue
				}
				if re, ok := strings.CutPrefix(v, "~"); ok {
					if _, err := regexp.Compile(re); err != nil {
						doc.Errorf(&c.diags, at, "invalid regular expression: %v", err)
					}
				}
			}
		}
		absent := map[string]bool{}
		for j, name := range ex.OriginAbsentHeaders {
			at := fmt.Sprintf("%s.expect.originAbsentHeaders[%d]", p, j)
			if !checkHeaderName(doc, &c.diags, at, name) {
				continue
			}
			absent[strings.ToLower(name)] = true
		}
		for name := range ex.OriginHeaders {
			if absent[strings.ToLower(name)] {
				doc.Errorf(&c.diags, p+".expect.originHeaders."+name, "header %q is expected both in originHeaders and in originAbsentHeaders: the case can never pass", name)
			}
		}
		if ex.Handshake == "rejected" && len(ex.OriginAbsentHeaders) > 0 {
			doc.Errorf(&c.diags, p+".expect.originAbsentHeaders", "a rejected handshake has no request at the origin: drop originAbsentHeaders")
		}
		if rq := tc.Request; rq != nil {
			for name := range rq.Headers {
				checkHeaderName(doc, &c.diags, p+".request.headers."+name, name)
			}
			if rq.Path != "" && !strings.HasPrefix(rq.Path, "/") && rq.Path != "*" {
				doc.Errorf(&c.diags, p+".request.path", "a request path starts with \"/\", such as /accounts?limit=10, not %q", rq.Path)
			}
		}
	}
}

// checkAlert reports an alert name that is neither an RFC 8446 name nor
// crypto/tls's wording of one, with the closest names.
func checkAlert(doc *manifest.Document, diags *diag.List, at, name string) {
	if _, ok := pki.NormalizeAlert(name); ok {
		return
	}
	var names []string
	for code := 0; code < 256; code++ {
		if n := pki.AlertName(uint8(code)); n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	hint := ""
	if best := suggest(strings.ToLower(name), names); best != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", best)
	}
	doc.Errorf(diags, at, "unknown TLS alert %q%s; the alerts edgectl sends are %s", name, hint, strings.Join(edgeAlerts, ", "))
}

// edgeAlerts are the alerts an edgectl edge ends a refused handshake with
// (DESIGN's verification table, plus unrecognized_name for an unknown SNI).
var edgeAlerts = []string{"certificate_required", "handshake_failure", "unknown_ca", "bad_certificate", "certificate_expired", "certificate_revoked", "unrecognized_name"}

// checkHeaderName reports a header name that is not an RFC 9110 token.
func checkHeaderName(doc *manifest.Document, diags *diag.List, at, name string) bool {
	if name == "" {
		doc.Errorf(diags, at, "a header name is empty")
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			doc.Errorf(diags, at, "header name %q has the character %q, which a header name cannot hold", name, name[i])
			return false
		}
	}
	return true
}

func isTokenChar(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0
}
