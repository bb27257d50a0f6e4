package edge

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"sync/atomic"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/rules"
	"github.com/edgectl/edgectl/pkg/state"
)

// compileCache is what a runtime was compiled from and into, kept so that
// the next compile (Options.Previous) reuses every piece whose inputs did
// not change instead of compiling it again:
//
//   - certificates and their private keys, by content: the SHA-256 of the
//     certificate PEM and of the key PEM read again at every compile (a
//     changed or unreadable key file is noticed as a full compile would);
//   - trust stores (CA pools, CRLs, depth), by TrustedCA name and spec;
//   - network lists, by name and spec;
//   - firewalls and applications, by name and spec, when no NetworkList
//     they name changed; an application carries its origin pool over;
//   - per-domain TLS policies (tls.Config, ticket key), by domain name,
//     when the domain's certificate, trust store and mode are the very
//     pieces the previous policy was built from and the ticket secret is
//     the same, so the ticket key changes with any of them.
//
// A cache is immutable once its compile returned: concurrent compiles may
// read the same one.
type compileCache struct {
	secret    []byte
	skipKeys  bool
	lists     map[string]cachedList
	trusts    map[string]cachedTrust
	certs     map[string]*compiledCert
	byContent map[[2][32]byte]*compiledCert
	firewalls map[string]cachedFirewall
	apps      map[string]*cachedApp
	policies  map[string]*tlsPolicy
	// keys are the stamps of the private-key files read, by reference
	// (privateKeyFile).
	keys map[string]keyStamp
	// resources are the snapshot compiled, when sorted as the stores
	// keep them: the next compile may patch this one (compileDelta).
	resources []state.Resource
}

type cachedList struct {
	spec *manifest.NetworkListSpec
	list *rules.NetworkList
}

type cachedTrust struct {
	spec  *manifest.TrustedCASpec
	trust *trustStore
}

type cachedFirewall struct {
	spec *manifest.FirewallSpec
	fw   *rules.Firewall
}

// newCompileCache is an empty cache for a compile with opts of the
// resources byKind (which size its maps).
func newCompileCache(opts Options, byKind map[string]map[string]*state.Resource) *compileCache {
	n := func(kind string) int { return len(byKind[kind]) }
	return &compileCache{
		secret: opts.TicketSecret, skipKeys: opts.SkipKeys,
		lists:     make(map[string]cachedList, n(manifest.KindNetworkList)),
		trusts:    make(map[string]cachedTrust, n(manifest.KindTrustedCA)),
		certs:     make(map[string]*compiledCert, n(manifest.KindCertificate)),
		byContent: make(map[[2][32]byte]*compiledCert, n(manifest.KindCertificate)),
		firewalls: make(map[string]cachedFirewall, n(manifest.KindFirewall)),
		apps:      make(map[string]*cachedApp, n(manifest.KindApplication)),
		policies:  make(map[string]*tlsPolicy, n(manifest.KindDomain)),
	}
}

// previousCache returns the cache of opts.Previous, or an empty one when
// there is no previous runtime.
func previousCache(opts Options) *compileCache {
	if opts.Previous == nil || opts.Previous.cache == nil {
		return newCompileCache(Options{}, nil)
	}
	return opts.Previous.cache
}

// certReusable reports whether the previous certificates (parsed keys
// included) may serve this compile: only when keys are loaded the same way.
func (prev *compileCache) certReusable(opts Options) bool { return prev.skipKeys == opts.SkipKeys }

// policyReusable reports whether the previous TLS policies may serve this
// compile: their ticket keys derive from the ticket secret.
func (prev *compileCache) policyReusable(opts Options) bool {
	return len(prev.secret) > 0 && bytes.Equal(prev.secret, opts.TicketSecret)
}

// certContent identifies a certificate with its key by content.
func certContent(certPEM string, keyPEM []byte) [2][32]byte {
	return [2][32]byte{sha256.Sum256([]byte(certPEM)), sha256.Sum256(keyPEM)}
}

// changedLists returns the names of the NetworkLists that are new, gone or
// compiled anew since prev: the firewalls and applications naming one of
// them are compiled again.
func changedLists(prev, next *compileCache) map[string]bool {
	changed := map[string]bool{}
	for name, l := range next.lists {
		if p, ok := prev.lists[name]; !ok || p.list != l.list {
			changed[name] = true
		}
	}
	for name := range prev.lists {
		if _, ok := next.lists[name]; !ok {
			changed[name] = true
		}
	}
	return changed
}

// dependsOnChanged reports whether criteria name a changed NetworkList.
func dependsOnChanged(changed map[string]bool, criteria [][]manifest.Criterion) bool {
	if len(changed) == 0 {
		return false
	}
	var buf [4]string
	for _, name := range listRefs(buf[:0], criteria) {
		if changed[name] {
			return true
		}
	}
	return false
}

// cachedApp is a compiled application with the spec it was compiled from
// and a count of the runtimes (and the compile under way) that use its
// origin pool; the pool is closed when the last one lets go.
type cachedApp struct {
	spec      *manifest.ApplicationSpec
	app       *appRuntime
	refs      atomic.Int32
	closeOnce sync.Once
}

// newCachedApp holds app for the compile under way.
func newCachedApp(spec *manifest.ApplicationSpec, app *appRuntime) *cachedApp {
	a := &cachedApp{spec: spec, app: app}
	a.refs.Store(1)
	return a
}

// acquire takes a reference unless the pool was already released by every
// runtime (a closed previous runtime), in which case the application must
// be compiled anew.
func (a *cachedApp) acquire() bool {
	for {
		n := a.refs.Load()
		if n <= 0 {
			return false
		}
		if a.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release lets go of a reference; the last one closes the origin pool's
// idle connections, and connections still in use are closed when they are
// released to it (in-flight requests finish).
func (a *cachedApp) release() {
	if a.refs.Add(-1) == 0 {
		a.closeOnce.Do(a.app.close)
	}
}
