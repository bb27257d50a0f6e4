package edge

import (
	"crypto/tls"
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
	c := &compiler{opts: opts, errs: &CompileError{}}
	rt := &Runtime{
		serial: snap.Serial, lineage: snap.Lineage,
		exact: map[string]*Domain{}, wildcard: map[string]*Domain{}, apps: map[string]*appRuntime{},
		now: opts.Now, observer: opts.Observer,
	}
	if rt.observer == nil {
		rt.observer = nopObserver{}
	}
	c.byKind = groupByKind(snap)
	lists := c.networkLists()
	certs := c.certificates(c.byKind[manifest.KindCertificate])
	trusts := c.trustStores()
	firewalls := c.firewalls(lists)
	c.applications(rt, lists)
	for _, name := range sortedNames(c.byKind[manifest.KindDomain]) {
		c.domain(rt, name, certs, trusts, firewalls)
	}
	if len(c.errs.Problems) > 0 {
		for _, app := range rt.apps {
			app.close()
		}
		return nil, c.errs
	}
	rt.base = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		GetConfigForClient: rt.configForClient,
	}
	return rt, nil
}

// withDefaults fills in the options left zero.
func (opts Options) withDefaults() Options {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
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
	byKind := map[string]map[string]*state.Resource{}
	for i := range snap.Resources {
		r := &snap.Resources[i]
		if byKind[r.Kind] == nil {
			byKind[r.Kind] = map[string]*state.Resource{}
		}
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
	lists := map[string]*rules.NetworkList{}
	for name, r := range c.byKind[manifest.KindNetworkList] {
		nl, errs := rules.CompileNetworkList(r.Spec.(*manifest.NetworkListSpec))
		c.fieldErrors(r, errs)
		lists[name] = nl
	}
	return lists
}

// trustStores compiles the TrustedCAs; a broken one is left out.
func (c *compiler) trustStores() map[string]*trustStore {
	trusts := map[string]*trustStore{}
	for name, r := range c.byKind[manifest.KindTrustedCA] {
		t, err := compileTrust(name, r.Spec.(*manifest.TrustedCASpec))
		if err != nil {
			c.add(r, "spec", err.Error())
			continue
		}
		trusts[name] = t
	}
	return trusts
}

// firewalls compiles the Firewalls.
func (c *compiler) firewalls(lists map[string]*rules.NetworkList) map[string]*rules.Firewall {
	firewalls := map[string]*rules.Firewall{}
	for name, r := range c.byKind[manifest.KindFirewall] {
		fw, errs := rules.CompileFirewall(r.Spec.(*manifest.FirewallSpec), lists)
		c.fieldErrors(r, errs)
		firewalls[name] = fw
	}
	return firewalls
}

// applications compiles the Applications into rt.apps; a broken one is
// left out.
func (c *compiler) applications(rt *Runtime, lists map[string]*rules.NetworkList) {
	for name, r := range c.byKind[manifest.KindApplication] {
		app, err := compileApp(name, r.Spec.(*manifest.ApplicationSpec), lists)
		if err != nil {
			if fe := (*fieldErrs)(nil); errors.As(err, &fe) {
				c.fieldErrors(r, fe.errs)
			} else {
				c.add(r, "spec.origin", err.Error())
			}
			continue
		}
		rt.apps[name] = app
	}
}

// domain compiles the Domain name, with the certificate, trust store,
// application and firewall it names, and indexes its hostnames in rt.
func (c *compiler) domain(rt *Runtime, name string, certs map[string]*compiledCert, trusts map[string]*trustStore, firewalls map[string]*rules.Firewall) {
	r := c.byKind[manifest.KindDomain][name]
	spec := r.Spec.(*manifest.DomainSpec)
	d := &Domain{Name: name, Hostnames: spec.Hostnames}
	cert, ok := certs[spec.Certificate]
	if !ok {
		c.add(r, "spec.certificate", fmt.Sprintf("Certificate %q is missing or broken", spec.Certificate))
	}
	if d.app = rt.apps[spec.Application]; d.app == nil {
		c.add(r, "spec.application", fmt.Sprintf("Application %q is missing or broken", spec.Application))
	}
	if spec.Firewall != "" {
		if d.firewall = firewalls[spec.Firewall]; d.firewall == nil {
			c.add(r, "spec.firewall", fmt.Sprintf("Firewall %q is missing or broken", spec.Firewall))
		}
	}
	mode, trust, trustPEM := ModeOff, (*trustStore)(nil), ""
	if m := spec.MTLS; m != nil && m.Enabled {
		mode = ModeEnforce
		if m.Verification == manifest.VerificationPermissive {
			mode = ModePermissive
		}
		// Fail closed: mTLS without a usable trust store never serves.
		if trust = trusts[m.TrustedCA]; trust == nil {
			c.add(r, "spec.mtls.trustedCA", fmt.Sprintf("TrustedCA %q is missing or broken; the domain would have no trust store", m.TrustedCA))
			return
		}
		tca := c.byKind[manifest.KindTrustedCA][m.TrustedCA].Spec.(*manifest.TrustedCASpec)
		trustPEM = tca.Certificate + tca.CRL + fmt.Sprint(trust.depth)
	}
	if !ok {
		return
	}
	d.tls = compileTLS(name, cert.tls, cert.pem, mode, trust, trustPEM, c.opts.TicketSecret, c.opts.Now)
	c.hostnames(rt, r, d)
	rt.domains = append(rt.domains, d)
}

// hostnames indexes the hostnames of d in rt, refusing one that another
// domain already has.
func (c *compiler) hostnames(rt *Runtime, r *state.Resource, d *Domain) {
	for i, h := range d.Hostnames {
		h = NormalizeName(h)
		table, key := rt.exact, h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			table, key = rt.wildcard, rest
		}
		if other := table[key]; other != nil {
			c.add(r, fmt.Sprintf("spec.hostnames[%d]", i), fmt.Sprintf("hostname %q already belongs to Domain %q", h, other.Name))
			continue
		}
		table[key] = d
	}
}

type compiledCert struct {
	tls tls.Certificate
	pem string
}

type compiler struct {
	opts   Options
	errs   *CompileError
	byKind map[string]map[string]*state.Resource
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
// order so that the error is stable.
func (c *compiler) certificates(byName map[string]*state.Resource) map[string]*compiledCert {
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*compiledCert, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				out[i], errs[i] = c.certificate(byName[names[i]].Spec.(*manifest.CertificateSpec))
			}
		}()
	}
	wg.Wait()
	certs := make(map[string]*compiledCert, len(names))
	for i, name := range names {
		if errs[i] != nil {
			c.add(byName[name], "spec", errs[i].Error())
			continue
		}
		certs[name] = out[i]
	}
	return certs
}

// certificate loads the chain and its private key.
func (c *compiler) certificate(spec *manifest.CertificateSpec) (*compiledCert, error) {
	chain, err := pki.ParseCertificates([]byte(spec.Certificate))
	if err != nil {
		return nil, err
	}
	out := &compiledCert{pem: spec.Certificate}
	for _, ct := range chain {
		out.tls.Certificate = append(out.tls.Certificate, ct.Raw)
	}
	out.tls.Leaf = chain[0]
	if c.opts.SkipKeys {
		return out, nil
	}
	var keyPEM []byte
	switch {
	case spec.PrivateKeyFile != "":
		if keyPEM, err = c.opts.ReadFile(spec.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("cannot read private key: %w", err)
		}
	case spec.PrivateKeyEnv != "":
		v, ok := c.opts.LookupEnv(spec.PrivateKeyEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s holding the private key is not set", spec.PrivateKeyEnv)
		}
		keyPEM = []byte(v)
	default:
		return nil, fmt.Errorf("no private key reference")
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

// Close releases the runtime's idle origin connections; in-flight requests
// are not interrupted.
func (rt *Runtime) Close() {
	for _, app := range rt.apps {
		app.close()
	}
}
