package edge

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/state"

	"github.com/edgectl/edgectl/pkg/rules"
)

// Options are the outside facts a compile needs, injected so that this
// package touches no files, environment or clock of its own.
type Options struct {
	// ReadFile reads private-key files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// StatFile stats private-key files as ReadFile reads them (default
	// os.Stat with the default ReadFile; none otherwise). With it, a
	// reload reads again only the key files that changed since the
	// previous compile read them (see keyStamp); without it, it reads
	// them all.
	StatFile func(string) (os.FileInfo, error)
	// LookupEnv reads private keys named by privateKeyEnv (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// TicketSecret is mixed into every domain's session-ticket key; a
	// process keeps one for its lifetime so that reloads keep sessions of
	// unchanged domains. Empty means a fresh random secret.
	TicketSecret []byte
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observer receives per-request events (default: none).
	Observer Observer
	// SkipKeys compiles without loading private keys (validate on a machine
	// that does not hold them); the result must not serve.
	SkipKeys bool
	// Previous is the runtime this compile replaces, if any: every piece of
	// it whose inputs did not change is reused rather than compiled again
	// (certificates and keys by content, trust stores, network lists,
	// firewalls, applications with their origin pools, per-domain TLS
	// configurations), and the result is the runtime a full compile would
	// produce. Previous keeps serving and must still be closed; an origin
	// pool it shares with the new runtime stays open until neither uses
	// it. Previous must come from a Compile with the same ReadFile, StatFile,
	// LookupEnv, Now and Observer (a server keeps one Options for its
	// lifetime); TLS configurations are reused only under the same
	// TicketSecret, certificates only under the same SkipKeys.
	Previous *Runtime
}

// Runtime is a compiled snapshot: immutable, safe for concurrent use, and
// swapped as a whole on reload.
type Runtime struct {
	serial  int64
	lineage string
	domains []*Domain
	// exact maps a hostname to its domain; wildcard maps the parent of a
	// "*.parent" hostname to its domain.
	exact    map[string]*Domain
	wildcard map[string]*Domain
	apps     map[string]*appRuntime
	now      func() time.Time
	observer Observer
	// base is the listener's TLS configuration; its GetConfigForClient
	// selects the domain's configuration by SNI.
	base *tls.Config
	// cache is what the next compile may reuse (Options.Previous).
	cache *compileCache
	// patched says that the runtime was built by patching the previous
	// one (compileDelta), for the tests.
	patched   bool
	closeOnce sync.Once
}

// Domain is a compiled domain.
type Domain struct {
	Name      string
	Hostnames []string
	tls       *tlsPolicy
	firewall  *rules.Firewall
	app       *appRuntime
}

// Mode returns the domain's client-certificate mode.
func (d *Domain) Mode() Mode { return d.tls.mode }

// CompileError lists the problems of a snapshot that cannot serve, each
// naming its resource.
type CompileError struct {
	Problems []Problem
}

// Problem is one reason a resource cannot serve.
type Problem struct {
	Kind, Name string
	// Path is the field path inside the resource, such as spec.rules[0].
	Path    string
	Message string
}

func (e *CompileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s/%s", p.Kind, p.Name)
		if p.Path != "" {
			b.WriteString(" " + p.Path)
		}
		b.WriteString(": " + p.Message)
	}
	return b.String()
}

// Compile turns a snapshot into a runtime. It fails with a *CompileError
// when any resource cannot serve; nothing is partially compiled.
func Compile(snap *state.Snapshot, opts Options) (*Runtime, error) {
	opts = opts.withDefaults()
	if rt, ok := compileDelta(snap, opts); ok {
		return rt, nil
	}
	byKind := groupByKind(snap)
	c := &compiler{opts: opts, errs: &CompileError{}, byKind: byKind, prev: previousCache(opts), next: newCompileCache(opts, byKind)}
	c.certsOK, c.policiesOK = c.prev.certReusable(opts), c.prev.policyReusable(opts)
	nDomains := len(c.byKind[manifest.KindDomain])
	rt := newRuntime(snap, opts, c.next)
	rt.exact, rt.wildcard = make(map[string]*Domain, nDomains), make(map[string]*Domain, nDomains)
	rt.apps = make(map[string]*appRuntime, len(c.byKind[manifest.KindApplication]))
	rt.domains = make([]*Domain, 0, nDomains)
	lists := c.networkLists()
	c.changed = changedLists(c.prev, c.next)
	c.certificates(c.byKind[manifest.KindCertificate])
	c.trustStores()
	c.firewalls(lists)
	c.applications(rt, lists)
	for _, name := range sortedNames(c.byKind[manifest.KindDomain]) {
		r := c.byKind[manifest.KindDomain][name]
		if d := c.domain(rt, r); d != nil {
			c.hostnames(rt, r, d)
			rt.domains = append(rt.domains, d)
		}
	}
	if len(c.errs.Problems) > 0 {
		// Pools compiled for this runtime close; pools carried over from
		// the previous one stay with it.
		for _, a := range c.next.apps {
			a.release()
		}
		return nil, c.errs
	}
	if sortedResources(snap.Resources) {
		// The next compile may patch this one (see compileDelta).
		c.next.resources = snap.Resources
	}
	rt.base = newBaseConfig(rt)
	return rt, nil
}

// newRuntime is the runtime of snap compiled with opts into cache, its
// tables not yet built.
func newRuntime(snap *state.Snapshot, opts Options, cache *compileCache) *Runtime {
	rt := &Runtime{serial: snap.Serial, lineage: snap.Lineage, now: opts.Now, observer: opts.Observer, cache: cache}
	if rt.observer == nil {
		rt.observer = nopObserver{}
	}
	return rt
}

// newBaseConfig is the listener's TLS configuration of rt.
func newBaseConfig(rt *Runtime) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		GetConfigForClient: rt.configForClient,
	}
}

// withDefaults fills in the options left zero.
func (opts Options) withDefaults() Options {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
		if opts.StatFile == nil {
			opts.StatFile = os.Stat
		}
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.TicketSecret) == 0 {
		opts.TicketSecret = randomSecret()
	}
	return opts
}

// groupByKind indexes the snapshot's resources by kind and name.
func groupByKind(snap *state.Snapshot) map[string]map[string]*state.Resource {
	// Sized first: growing maps of 10,000 entries is a good part of an
	// incremental compile.
	counts := map[string]int{}
	for i := range snap.Resources {
		counts[snap.Resources[i].Kind]++
	}
	byKind := make(map[string]map[string]*state.Resource, len(counts))
	for kind, n := range counts {
		byKind[kind] = make(map[string]*state.Resource, n)
	}
	for i := range snap.Resources {
		r := &snap.Resources[i]
		byKind[r.Kind][r.Name] = r
	}
	return byKind
}

// sortedNames returns the names of resources in order, so that problems
// and domains come out in a stable order.
func sortedNames(byName map[string]*state.Resource) []string {
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// networkLists compiles the NetworkLists.
func (c *compiler) networkLists() map[string]*rules.NetworkList {
	lists := make(map[string]*rules.NetworkList, len(c.byKind[manifest.KindNetworkList]))
	for name, r := range c.byKind[manifest.KindNetworkList] {
		spec := r.Spec.(*manifest.NetworkListSpec)
		if p, ok := c.prev.lists[name]; ok && equalNetworkList(p.spec, spec) {
			lists[name], c.next.lists[name] = p.list, p
			continue
		}
		nl, errs := rules.CompileNetworkList(spec)
		c.fieldErrors(r, errs)
		lists[name], c.next.lists[name] = nl, cachedList{spec: spec, list: nl}
	}
	return lists
}

// trustStores compiles the TrustedCAs into c.next; a broken one is left
// out.
func (c *compiler) trustStores() {
	for name, r := range c.byKind[manifest.KindTrustedCA] {
		spec := r.Spec.(*manifest.TrustedCASpec)
		if p, ok := c.prev.trusts[name]; ok && equalTrustedCA(p.spec, spec) {
			c.next.trusts[name] = p
			continue
		}
		t, err := compileTrust(name, spec)
		if err != nil {
			c.add(r, "spec", err.Error())
			continue
		}
		c.next.trusts[name] = cachedTrust{spec: spec, trust: t}
	}
}

// firewalls compiles the Firewalls into c.next.
func (c *compiler) firewalls(lists map[string]*rules.NetworkList) {
	for name, r := range c.byKind[manifest.KindFirewall] {
		spec := r.Spec.(*manifest.FirewallSpec)
		if p, ok := c.prev.firewalls[name]; ok && equalFirewall(p.spec, spec) && !c.firewallListsChanged(spec) {
			// Its rate limiters carry over too: a reload that did not
			// change a Firewall does not reset its limits.
			c.next.firewalls[name] = p
			continue
		}
		fw, errs := rules.CompileFirewall(spec, lists)
		c.fieldErrors(r, errs)
		c.next.firewalls[name] = cachedFirewall{spec: spec, fw: fw}
	}
}

// applications compiles the Applications into rt.apps; a broken one is
// left out.
func (c *compiler) applications(rt *Runtime, lists map[string]*rules.NetworkList) {
	for name, r := range c.byKind[manifest.KindApplication] {
		spec := r.Spec.(*manifest.ApplicationSpec)
		if p := c.prev.apps[name]; p != nil && equalApplication(p.spec, spec) && !c.appListsChanged(spec) && p.acquire() {
			// The origin pool carries over with its idle connections.
			rt.apps[name], c.next.apps[name] = p.app, p
			continue
		}
		app, err := compileApp(name, spec, lists)
		if err != nil {
			if fe := (*fieldErrs)(nil); errors.As(err, &fe) {
				c.fieldErrors(r, fe.errs)
			} else {
				c.add(r, "spec.origin", err.Error())
			}
			continue
		}
		rt.apps[name], c.next.apps[name] = app, newCachedApp(spec, app)
	}
}

// domain compiles the Domain r with the certificate, trust store,
// application and firewall it names (c.next's and rt's), or returns nil
// with its problems added. Its TLS policy goes into c.next.
func (c *compiler) domain(rt *Runtime, r *state.Resource) *Domain {
	name := r.Name
	spec := r.Spec.(*manifest.DomainSpec)
	d := &Domain{Name: name, Hostnames: spec.Hostnames}
	cert, ok := c.next.certs[spec.Certificate]
	if !ok {
		c.add(r, "spec.certificate", fmt.Sprintf("Certificate %q is missing or broken", spec.Certificate))
	}
	if d.app = rt.apps[spec.Application]; d.app == nil {
		c.add(r, "spec.application", fmt.Sprintf("Application %q is missing or broken", spec.Application))
	}
	if spec.Firewall != "" {
		if d.firewall = c.next.firewalls[spec.Firewall].fw; d.firewall == nil {
			c.add(r, "spec.firewall", fmt.Sprintf("Firewall %q is missing or broken", spec.Firewall))
		}
	}
	mode, trust, tca := ModeOff, (*trustStore)(nil), (*manifest.TrustedCASpec)(nil)
	if m := spec.MTLS; m != nil && m.Enabled {
		mode = ModeEnforce
		if m.Verification == manifest.VerificationPermissive {
			mode = ModePermissive
		}
		// Fail closed: mTLS without a usable trust store never serves.
		t, found := c.next.trusts[m.TrustedCA]
		if trust, tca = t.trust, t.spec; !found || trust == nil {
			c.add(r, "spec.mtls.trustedCA", fmt.Sprintf("TrustedCA %q is missing or broken; the domain would have no trust store", m.TrustedCA))
			return nil
		}
	}
	if !ok {
		return nil
	}
	// A policy is reused only when built from these very pieces: its
	// ticket key (and so resumption) then stays the same; any change of
	// certificate, trust store, CRLs or mode builds a new one with a new key.
	if p := c.prev.policies[name]; c.policiesOK && p != nil && p.cert == cert && p.trust == trust && p.mode == mode {
		d.tls = p
	} else {
		trustPEM := ""
		if tca != nil {
			trustPEM = tca.Certificate + tca.CRL + fmt.Sprint(trust.depth)
		}
		d.tls = compileTLS(name, cert.tls, cert.pem, mode, trust, trustPEM, c.opts.TicketSecret, c.opts.Now)
		d.tls.cert = cert
	}
	c.next.policies[name] = d.tls
	return d
}

// hostnames indexes the hostnames of d in rt, refusing one that another
// domain already has.
func (c *compiler) hostnames(rt *Runtime, r *state.Resource, d *Domain) {
	for i, h := range d.Hostnames {
		h = NormalizeName(h)
		table, key := rt.hostTable(h)
		if other := table[key]; other != nil {
			c.add(r, fmt.Sprintf("spec.hostnames[%d]", i), fmt.Sprintf("hostname %q already belongs to Domain %q", h, other.Name))
			continue
		}
		table[key] = d
	}
}

// hostTable returns the table of rt that indexes the normalized hostname
// h, and its key there: the exact table, or for "*.parent" the wildcard
// table under parent.
func (rt *Runtime) hostTable(h string) (map[string]*Domain, string) {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return rt.wildcard, rest
	}
	return rt.exact, h
}

type compiledCert struct {
	tls tls.Certificate
	pem string
	// content is the SHA-256 of the certificate PEM and of the private key
	// PEM it was loaded with (compileCache).
	content [2][32]byte
}

type compiler struct {
	opts   Options
	errs   *CompileError
	byKind map[string]map[string]*state.Resource
	// prev is the cache of Options.Previous (empty without one), next the
	// cache of the runtime being compiled.
	prev, next *compileCache
	// certsOK and policiesOK say whether prev's certificates and TLS
	// policies may be reused under these options.
	certsOK, policiesOK bool
	// changed names the NetworkLists that differ from prev's.
	changed map[string]bool
}

// firewallListsChanged reports whether a Firewall names a NetworkList that
// changed since the previous runtime.
func (c *compiler) firewallListsChanged(spec *manifest.FirewallSpec) bool {
	for i := range spec.Rules {
		if dependsOnChanged(c.changed, spec.Rules[i].Criteria) {
			return true
		}
	}
	return false
}

// appListsChanged reports whether an Application names a NetworkList that
// changed since the previous runtime.
func (c *compiler) appListsChanged(spec *manifest.ApplicationSpec) bool {
	for i := range spec.Rules {
		if dependsOnChanged(c.changed, spec.Rules[i].Criteria) {
			return true
		}
	}
	return false
}

func (c *compiler) add(r *state.Resource, path, msg string) {
	c.errs.Problems = append(c.errs.Problems, Problem{Kind: r.Kind, Name: r.Name, Path: path, Message: msg})
}

func (c *compiler) fieldErrors(r *state.Resource, errs []rules.FieldError) {
	for _, fe := range errs {
		if !fe.Warning {
			c.add(r, fe.Path, fe.Message)
		}
	}
}

// certificates loads every certificate and key. Parsing them is most of a
// large compile, so it runs on every CPU; problems are reported in name
// order so that the error is stable. They go into c.next.
func (c *compiler) certificates(byName map[string]*state.Resource) {
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	specs := make([]*manifest.CertificateSpec, len(names))
	for i, name := range names {
		specs[i] = byName[name].Spec.(*manifest.CertificateSpec)
	}
	out, errs := c.loadCertificates(names, specs)
	for i, name := range names {
		if errs[i] != nil {
			c.add(byName[name], "spec", errs[i].Error())
			continue
		}
		c.next.certs[name] = out[i]
		c.next.byContent[out[i].content] = out[i]
	}
}

// loadCertificates loads the certificates names[i] (specs[i]) on every
// CPU with cachedCertificate, and records their key files' stamps in
// c.next. out[i] or errs[i] is each one's result.
func (c *compiler) loadCertificates(names []string, specs []*manifest.CertificateSpec) (out []*compiledCert, errs []error) {
	out, errs = make([]*compiledCert, len(names)), make([]error, len(names))
	stamps := make([]keyStamp, len(names))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				out[i], stamps[i], errs[i] = c.cachedCertificate(names[i], specs[i])
			}
		}()
	}
	wg.Wait()
	c.recordKeys(specs, stamps)
	return out, errs
}

// cachedCertificate is certificate, reusing the previous runtime's parsed
// chain and key when the certificate PEM and the private key PEM are the
// same: by name first, then by content (a renamed or duplicated
// certificate). The key is read again, so that a changed or missing key
// is noticed, unless its file is unchanged since the previous compile read
// it (keyStamp). It returns the key file's stamp to record, if any.
func (c *compiler) cachedCertificate(name string, spec *manifest.CertificateSpec) (*compiledCert, keyStamp, error) {
	if !c.certsOK {
		cert, err := c.certificate(spec)
		return cert, keyStamp{}, err
	}
	var keyPEM []byte
	var stamp keyStamp
	keySum := sha256.Sum256(nil)
	if !c.opts.SkipKeys {
		st, known, stamped := c.stampedKey(spec)
		if known {
			keySum, stamp = st.sum, st
		} else {
			var err error
			if keyPEM, err = c.privateKey(spec); err != nil {
				// The full path reports a broken chain before a missing key.
				cert, err := c.certificate(spec)
				return cert, keyStamp{}, err
			}
			keySum = sha256.Sum256(keyPEM)
			if stamped {
				st.sum = keySum
				stamp = st
			}
		}
	}
	if p := c.prev.certs[name]; p != nil && p.pem == spec.Certificate && p.content[1] == keySum {
		return p, stamp, nil
	}
	content := [2][32]byte{sha256.Sum256([]byte(spec.Certificate)), keySum}
	if p := c.prev.byContent[content]; p != nil {
		return p, stamp, nil
	}
	if keyPEM == nil && !c.opts.SkipKeys {
		// Known by its stamp, but the certificate changed: the key is
		// needed, and read now.
		var err error
		if keyPEM, err = c.privateKey(spec); err != nil {
			cert, err := c.certificate(spec)
			return cert, keyStamp{}, err
		}
		if sha256.Sum256(keyPEM) != keySum {
			stamp = keyStamp{} // changed under the stamp: not recorded
		}
	}
	cert, err := c.parseCertificate(spec, keyPEM)
	return cert, stamp, err
}

// recordKeys keeps the key files' stamps of this compile for the next
// one; stamps[i] belongs to specs[i] (a zero stamp: none).
func (c *compiler) recordKeys(specs []*manifest.CertificateSpec, stamps []keyStamp) {
	c.next.keys = make(map[string]keyStamp, len(stamps))
	for i, st := range stamps {
		if st.readAt != 0 {
			c.next.keys[specs[i].PrivateKeyFile] = st
		}
	}
}

// certificate loads the chain and its private key.
func (c *compiler) certificate(spec *manifest.CertificateSpec) (*compiledCert, error) {
	chain, err := pki.ParseCertificates([]byte(spec.Certificate))
	if err != nil {
		return nil, err
	}
	var keyPEM []byte
	if !c.opts.SkipKeys {
		if keyPEM, err = c.privateKey(spec); err != nil {
			return nil, err
		}
	}
	return c.withKey(spec, chain, keyPEM)
}

// privateKey reads the PEM of a certificate's private key.
func (c *compiler) privateKey(spec *manifest.CertificateSpec) ([]byte, error) {
	switch {
	case spec.PrivateKeyFile != "":
		keyPEM, err := c.opts.ReadFile(spec.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read private key: %w", err)
		}
		return keyPEM, nil
	case spec.PrivateKeyEnv != "":
		v, ok := c.opts.LookupEnv(spec.PrivateKeyEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s holding the private key is not set", spec.PrivateKeyEnv)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("no private key reference")
}

// parseCertificate parses the chain and, unless keys are skipped, the
// private key keyPEM already read.
func (c *compiler) parseCertificate(spec *manifest.CertificateSpec, keyPEM []byte) (*compiledCert, error) {
	chain, err := pki.ParseCertificates([]byte(spec.Certificate))
	if err != nil {
		return nil, err
	}
	return c.withKey(spec, chain, keyPEM)
}

// withKey completes a parsed chain with its private key, which must match
// the leaf (none when keys are skipped).
func (c *compiler) withKey(spec *manifest.CertificateSpec, chain []*x509.Certificate, keyPEM []byte) (*compiledCert, error) {
	out := &compiledCert{pem: spec.Certificate, content: certContent(spec.Certificate, keyPEM)}
	for _, ct := range chain {
		out.tls.Certificate = append(out.tls.Certificate, ct.Raw)
	}
	out.tls.Leaf = chain[0]
	if c.opts.SkipKeys {
		return out, nil
	}
	key, err := pki.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !pki.KeyMatchesCertificate(key, chain[0]) {
		return nil, fmt.Errorf("private key does not match the certificate %q", chain[0].Subject.CommonName)
	}
	out.tls.PrivateKey = key
	return out, nil
}

// Serial is the applied serial of the compiled snapshot.
func (rt *Runtime) Serial() int64 { return rt.serial }

// Lineage is the lineage of the compiled snapshot.
func (rt *Runtime) Lineage() string { return rt.lineage }

// Domains returns the compiled domains, sorted by name.
func (rt *Runtime) Domains() []*Domain { return rt.domains }

// TLSConfig returns the listener's TLS configuration. A server that swaps
// runtimes should install its own GetConfigForClient that delegates to the
// current runtime's ConfigForClient.
func (rt *Runtime) TLSConfig() *tls.Config { return rt.base }

// ConfigForClient selects the TLS configuration of the domain named by SNI.
// An unknown or missing SNI gets a configuration without certificates, which
// ends the handshake with an unrecognized_name alert: never a lax default.
func (rt *Runtime) ConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	return rt.configForClient(hello)
}

var refuseConfig = &tls.Config{MinVersion: tls.VersionTLS12}

func (rt *Runtime) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if d := rt.Lookup(hello.ServerName); d != nil {
		return d.tls.config, nil
	}
	return refuseConfig, nil
}

// Lookup finds the domain of a server name or Host: exact hostname first,
// then a wildcard for exactly one more label. name is normalized first.
func (rt *Runtime) Lookup(name string) *Domain {
	return rt.lookupNormalized(NormalizeName(name))
}

// lookupNormalized is Lookup for a name NormalizeName already returned.
func (rt *Runtime) lookupNormalized(name string) *Domain {
	if name == "" {
		return nil
	}
	if d := rt.exact[name]; d != nil {
		return d
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return rt.wildcard[name[i+1:]]
	}
	return nil
}

// Close releases the runtime's origin pools: a pool no other runtime uses
// (one compiled with this runtime as Options.Previous) closes its idle
// connections; in-flight requests are not interrupted. Close is
// idempotent.
func (rt *Runtime) Close() {
	rt.closeOnce.Do(func() {
		for _, a := range rt.cache.apps {
			a.release()
		}
	})
}
