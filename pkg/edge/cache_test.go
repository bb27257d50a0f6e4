package edge

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"crypto/tls"
	"crypto/x509"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/state"
)

// TestSpecEqualSeesEveryField fills every field of each spec type the
// incremental compile compares, then changes one field (or empties one
// pointer, or shortens one slice) at a time: the equality must see every
// change, so a field added to a spec without being compared fails here
// instead of being reused stale.
func TestSpecEqualSeesEveryField(t *testing.T) {
	t.Run("TrustedCA", func(t *testing.T) { checkEqualSeesEveryField(t, equalTrustedCA) })
	t.Run("NetworkList", func(t *testing.T) { checkEqualSeesEveryField(t, equalNetworkList) })
	t.Run("Application", func(t *testing.T) { checkEqualSeesEveryField(t, equalApplication) })
	t.Run("Firewall", func(t *testing.T) { checkEqualSeesEveryField(t, equalFirewall) })
}

func checkEqualSeesEveryField[T any](t *testing.T, equal func(a, b *T) bool) {
	base, other := new(T), new(T)
	points := fillSpec(t, reflect.ValueOf(base).Elem(), "", new(int), -1)
	fillSpec(t, reflect.ValueOf(other).Elem(), "", new(int), -1)
	if !equal(base, other) || !equal(base, base) {
		t.Fatalf("two identical %T are not equal", base)
	}
	if points < 3 {
		t.Fatalf("only %d fields found in %T", points, base)
	}
	for k := range points {
		v := new(T)
		var path string
		fillSpecAt(t, reflect.ValueOf(v).Elem(), k, &path)
		if equal(base, v) {
			t.Errorf("%T: a change of %s is not seen", base, path)
		}
		if equal(v, base) {
			t.Errorf("%T: a change of %s is not seen (arguments swapped)", base, path)
		}
	}
}

func fillSpecAt(t *testing.T, v reflect.Value, target int, path *string) {
	n := 0
	fillSpecPath(t, v, "", &n, target, path)
}

// fillSpec fills v: every string with its field path, every bool true,
// every int the length of its path, every pointer allocated and every
// slice two long. The target-th mutation point (leaf, pointer or slice,
// in walk order) is changed instead. It returns the number of points.
func fillSpec(t *testing.T, v reflect.Value, path string, n *int, target int) int {
	var ignored string
	fillSpecPath(t, v, path, n, target, &ignored)
	return *n
}

func fillSpecPath(t *testing.T, v reflect.Value, path string, n *int, target int, hitPath *string) {
	point := func() bool {
		hit := *n == target
		*n++
		if hit {
			*hitPath = path
		}
		return hit
	}
	switch v.Kind() {
	case reflect.String:
		s := path
		if point() {
			s += "'"
		}
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(!point())
	case reflect.Int:
		i := int64(len(path))
		if point() {
			i++
		}
		v.SetInt(i)
	case reflect.Pointer:
		if point() {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillSpecPath(t, v.Elem(), path, n, target, hitPath)
	case reflect.Slice:
		l := 2
		if point() {
			l = 1
		}
		v.Set(reflect.MakeSlice(v.Type(), l, l))
		for i := range l {
			fillSpecPath(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i), n, target, hitPath)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fillSpecPath(t, v.Field(i), path+"."+v.Type().Field(i).Name, n, target, hitPath)
		}
	default:
		t.Fatalf("%s: kind %s: teach fillSpec (and the spec equality) about it", path, v.Kind())
	}
}

// incrFixture is a small world for the incremental compile tests: three
// server certificates with their keys, two client CAs (one with a CRL), a
// revoked and two valid client certificates, and a recording origin.
type incrFixture struct {
	edgeCA       *pkitest.CA
	servers      []*pkitest.Certificate
	caA, caB     *pkitest.CA
	crlA         string
	clients      []*pkitest.Certificate // A valid, A revoked, B valid
	origin       *httptest.Server
	secret       []byte
	keyOverrides sync.Map // env name -> PEM, to break a key
}

var (
	incrOnce sync.Once
	incrFix  *incrFixture
)

func getIncrFixture(t *testing.T) *incrFixture {
	incrOnce.Do(func() {
		edgeCA := pkitest.NewCA("incr edge root")
		f := &incrFixture{edgeCA: edgeCA, caA: pkitest.NewCA("incr partners A"), caB: pkitest.NewCA("incr partners B"), secret: []byte("incr ticket secret")}
		for i := range 3 {
			f.servers = append(f.servers, edgeCA.IssueServer([]string{fmt.Sprintf("s%d.incr.test", i), "*.test"}))
		}
		revoked := f.caA.IssueClient("revoked")
		f.clients = []*pkitest.Certificate{f.caA.IssueClient("good-a"), revoked, f.caB.IssueClient("good-b")}
		now := time.Now()
		f.crlA = string(pkitest.EncodeCRL(f.caA.CRL(now.Add(-time.Hour), now.Add(24*time.Hour), revoked.Cert.SerialNumber)))
		f.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var lines []string
			for name, vs := range r.Header {
				lines = append(lines, name+": "+strings.Join(vs, ","))
			}
			sort.Strings(lines)
			w.Header().Set("Server", "incr-origin")
			fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.URL.RequestURI(), r.Host, strings.Join(lines, "\n"))
		}))
		incrFix = f
	})
	return incrFix
}

func (f *incrFixture) options(prev *Runtime) Options {
	return Options{
		TicketSecret: f.secret,
		Previous:     prev,
		LookupEnv: func(k string) (string, bool) {
			if v, ok := f.keyOverrides.Load(k); ok {
				return v.(string), true
			}
			var i int
			if _, err := fmt.Sscanf(k, "KEY%d", &i); err != nil || i >= len(f.servers) {
				return "", false
			}
			return string(f.servers[i].KeyPEM()), true
		},
	}
}

// incrWorld is the editable description of a snapshot.
type incrWorld struct {
	certs   map[string]int // Certificate name -> server certificate index (KEY<index>)
	lists   map[string][]string
	trusts  map[string]incrTrust
	apps    map[string]incrApp
	fws     map[string]incrFW
	domains map[string]*manifest.DomainSpec
	// unsorted leaves the snapshot's resources in no order (a store sorts
	// them; a hand-made snapshot may not be): no compile patches it.
	unsorted bool
}

type incrTrust struct {
	bundle string // "A", "B" or "AB"
	crl    bool
	depth  int // 0: default
}

type incrApp struct {
	version  int
	list     string // NetworkList named by the rule's is_in_list, "" for none
	hostHdr  bool
	response bool
}

type incrFW struct {
	admin int
	list  string
	// rate adds a global limit of one request per minute.
	rate bool
}

func newIncrWorld() *incrWorld {
	w := &incrWorld{
		certs:  map[string]int{"c0": 0, "c1": 1, "c2": 2},
		lists:  map[string][]string{"office": {"192.0.2.0/24"}, "blocked": {"198.51.100.7"}},
		trusts: map[string]incrTrust{"ca1": {bundle: "A", crl: true}, "ca2": {bundle: "B"}},
		apps: map[string]incrApp{
			"app0": {version: 1, list: "office"}, "app1": {version: 1, response: true}, "app2": {version: 1, list: "blocked", hostHdr: true},
		},
		fws:     map[string]incrFW{"fw0": {admin: 1, list: "blocked"}, "fw1": {admin: 2}},
		domains: map[string]*manifest.DomainSpec{},
	}
	for i := range 5 {
		name := fmt.Sprintf("dom%d", i)
		d := &manifest.DomainSpec{Hostnames: []string{name + ".test", "*." + name + ".test"},
			Certificate: fmt.Sprintf("c%d", i%3), Application: fmt.Sprintf("app%d", i%3)}
		switch i {
		case 1:
			d.Firewall = "fw0"
			d.MTLS = &manifest.MTLS{Enabled: true, Verification: manifest.VerificationEnforce, TrustedCA: "ca1"}
		case 2:
			d.MTLS = &manifest.MTLS{Enabled: true, Verification: manifest.VerificationPermissive, TrustedCA: "ca1"}
		case 3:
			d.Firewall = "fw1"
			d.MTLS = &manifest.MTLS{Enabled: true, Verification: manifest.VerificationPermissive, TrustedCA: "ca2"}
		}
		w.domains[name] = d
	}
	return w
}

// snapshot renders the world as a store would hand it over: decoded from
// JSON, so that no spec is shared with an earlier snapshot.
func (w *incrWorld) snapshot(t *testing.T, f *incrFixture, serial int64) *state.Snapshot {
	arg := func(s string) *string { return &s }
	var res []state.Resource
	for name, i := range w.certs {
		res = append(res, state.Resource{Kind: manifest.KindCertificate, Name: name, Spec: &manifest.CertificateSpec{
			Certificate: string(f.servers[i].CertPEM()), PrivateKeyEnv: fmt.Sprintf("KEY%d", i)}})
	}
	for name, items := range w.lists {
		res = append(res, state.Resource{Kind: manifest.KindNetworkList, Name: name, Spec: &manifest.NetworkListSpec{Type: "ipCidr", Items: items}})
	}
	for name, tr := range w.trusts {
		spec := &manifest.TrustedCASpec{}
		if strings.Contains(tr.bundle, "A") {
			spec.Certificate += string(f.caA.CertPEM())
		}
		if strings.Contains(tr.bundle, "B") {
			spec.Certificate += string(f.caB.CertPEM())
		}
		if tr.crl {
			spec.CRL = f.crlA
		}
		if tr.depth > 0 {
			spec.VerifyDepth = &tr.depth
		}
		res = append(res, state.Resource{Kind: manifest.KindTrustedCA, Name: name, Spec: spec})
	}
	for name, a := range w.apps {
		spec := &manifest.ApplicationSpec{Origin: manifest.Origin{URL: f.origin.URL, ResponseTimeout: "5s"}}
		spec.Rules = append(spec.Rules, manifest.AppRule{Name: "tag", Behaviors: []manifest.AppBehavior{
			{AddRequestHeader: fmt.Sprintf("X-App: %s-v%d", name, a.version)},
			{AddRequestHeader: "X-Verify: ${ssl_client_verify}"},
		}})
		if a.list != "" {
			spec.Rules = append(spec.Rules, manifest.AppRule{Name: "listed",
				Criteria:  [][]manifest.Criterion{{{Variable: "${remote_addr}", Operator: "is_in_list", Argument: arg(a.list)}}},
				Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X-Listed: " + a.list}}})
		}
		if a.hostHdr {
			spec.Origin.HostHeader = "origin-" + name + ".test"
		}
		if a.response {
			spec.Rules = append(spec.Rules, manifest.AppRule{Name: "resp", Phase: manifest.PhaseResponse,
				Behaviors: []manifest.AppBehavior{{AddResponseHeader: fmt.Sprintf("X-Resp: v%d", a.version)}, {FilterResponseHeader: "Server"}}})
		}
		res = append(res, state.Resource{Kind: manifest.KindApplication, Name: name, Spec: spec})
	}
	for name, fw := range w.fws {
		spec := &manifest.FirewallSpec{Rules: []manifest.FirewallRule{{Name: "admin",
			Criteria:  [][]manifest.Criterion{{{Variable: "request_uri", Operator: "starts_with", Argument: arg(fmt.Sprintf("/admin%d", fw.admin))}}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}}}}}
		if fw.list != "" {
			spec.Rules = append(spec.Rules, manifest.FirewallRule{Name: "listed",
				Criteria:  [][]manifest.Criterion{{{Variable: "network", Operator: "is_in_list", Argument: arg(fw.list)}}},
				Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 451, ContentBody: "listed by " + name}}}})
		}
		if fw.rate {
			spec.Rules = append(spec.Rules, manifest.FirewallRule{Name: "rate",
				Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "minute", LimitBy: "global", AverageRateLimit: 1, MaximumBurstSize: 1}}}})
		}
		res = append(res, state.Resource{Kind: manifest.KindFirewall, Name: name, Spec: spec})
	}
	for name, d := range w.domains {
		res = append(res, state.Resource{Kind: manifest.KindDomain, Name: name, Spec: d})
	}
	if !w.unsorted {
		state.SortResources(res) // as the stores keep them
	}
	b, err := json.Marshal(&state.Snapshot{Serial: serial, Lineage: "incr", Resources: res})
	if err != nil {
		t.Fatal(err)
	}
	var snap state.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	return &snap
}

// edit applies one random change to the world and describes it.
func (w *incrWorld) edit(r *rand.Rand, f *incrFixture) string {
	pick := func(m any) string {
		keys := reflect.ValueOf(m).MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		sort.Strings(names)
		if len(names) == 0 {
			return ""
		}
		return names[r.IntN(len(names))]
	}
	f.keyOverrides.Delete("KEY0")
	w.unsorted = r.IntN(8) == 0
	switch r.IntN(16) {
	case 0:
		name := pick(w.certs)
		w.certs[name] = (w.certs[name] + 1) % 3
		return "certificate " + name + " gets another certificate and key"
	case 1:
		name := pick(w.domains)
		w.domains[name].Certificate = pick(w.certs)
		return "domain " + name + " uses certificate " + w.domains[name].Certificate
	case 2:
		name := pick(w.trusts)
		tr := w.trusts[name]
		tr.crl = !tr.crl
		w.trusts[name] = tr
		return "trusted CA " + name + " toggles its CRL"
	case 3:
		name := pick(w.trusts)
		tr := w.trusts[name]
		tr.depth = (tr.depth + 1) % 3
		tr.bundle = []string{"A", "B", "AB"}[r.IntN(3)]
		w.trusts[name] = tr
		return "trusted CA " + name + " changes bundle or depth"
	case 4:
		name := pick(w.lists)
		w.lists[name] = [][]string{{"192.0.2.0/24"}, {"198.51.100.7"}, {"192.0.2.0/24", "198.51.100.0/24"}, {"203.0.113.9"}}[r.IntN(4)]
		return "network list " + name + " changes its items"
	case 5:
		name := pick(w.apps)
		a := w.apps[name]
		a.version++
		w.apps[name] = a
		return "application " + name + " changes a header"
	case 6:
		name := pick(w.apps)
		a := w.apps[name]
		a.list = []string{"", "office", "blocked", "missing"}[r.IntN(4)]
		a.hostHdr, a.response = r.IntN(2) == 0, r.IntN(2) == 0
		w.apps[name] = a
		return "application " + name + " changes its rules or origin"
	case 7:
		name := pick(w.fws)
		fw := w.fws[name]
		fw.admin++
		fw.list = []string{"", "office", "blocked"}[r.IntN(3)]
		w.fws[name] = fw
		return "firewall " + name + " changes"
	case 8:
		name := pick(w.domains)
		d := w.domains[name]
		switch r.IntN(3) {
		case 0:
			d.MTLS = nil
		case 1:
			d.MTLS = &manifest.MTLS{Enabled: true, Verification: manifest.VerificationEnforce, TrustedCA: pick(w.trusts)}
		default:
			d.MTLS = &manifest.MTLS{Enabled: true, Verification: manifest.VerificationPermissive, TrustedCA: pick(w.trusts)}
		}
		return "domain " + name + " changes its mTLS"
	case 9:
		name := pick(w.domains)
		w.domains[name].Application = pick(w.apps)
		w.domains[name].Firewall = []string{"", "fw0", "fw1"}[r.IntN(3)]
		return "domain " + name + " changes application or firewall"
	case 10:
		if len(w.domains) > 2 && r.IntN(2) == 0 {
			name := pick(w.domains)
			delete(w.domains, name)
			return "domain " + name + " is removed"
		}
		name := fmt.Sprintf("dom%d", r.IntN(9))
		if _, ok := w.domains[name]; ok {
			return "nothing changes (domain " + name + " exists)"
		}
		w.domains[name] = &manifest.DomainSpec{Hostnames: []string{name + ".test"}, Certificate: pick(w.certs), Application: pick(w.apps)}
		return "domain " + name + " is added"
	case 11:
		// A renamed certificate (same content, new name).
		old := pick(w.certs)
		name := fmt.Sprintf("c%d", 3+r.IntN(100))
		w.certs[name] = w.certs[old]
		for _, d := range w.domains {
			if d.Certificate == old {
				d.Certificate = name
			}
		}
		delete(w.certs, old)
		return "certificate " + old + " is renamed " + name
	case 12:
		// A key that no longer matches its certificate: both compiles fail.
		f.keyOverrides.Store("KEY0", string(f.servers[1].KeyPEM()))
		return "the key of server certificate 0 is replaced by a wrong one"
	case 13:
		// A hostname claimed twice: both compiles fail.
		a, b := pick(w.domains), pick(w.domains)
		w.domains[a].Hostnames = append(slices.Clone(w.domains[a].Hostnames), w.domains[b].Hostnames[0])
		return "domain " + a + " claims a hostname of " + b
	case 14:
		name := pick(w.domains)
		w.domains[name].Hostnames = w.domains[name].Hostnames[:1]
		return "domain " + name + " keeps one hostname"
	default:
		return "nothing changes (a forced reload)"
	}
}

// fixBroken undoes the edits that make every compile fail, so that a
// sequence goes on serving.
func (w *incrWorld) fixBroken(f *incrFixture) {
	f.keyOverrides.Delete("KEY0")
	for name, d := range w.domains {
		seen := map[string]bool{}
		d.Hostnames = slices.DeleteFunc(slices.Clone(d.Hostnames), func(h string) bool {
			dup := seen[h]
			seen[h] = true
			return dup || !strings.Contains(h, name+".test")
		})
	}
	for name, tr := range w.trusts {
		if tr.crl && !strings.Contains(tr.bundle, "A") { // the CRL is A's
			tr.crl = false
			w.trusts[name] = tr
		}
	}
	for name, a := range w.apps {
		if a.list == "missing" {
			a.list = ""
			w.apps[name] = a
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// observe describes everything of rt a client or origin can see: lookups,
// each domain's TLS configuration (certificate, client-certificate policy,
// trust store, the identity its ticket key derives from) and the decisions
// of the firewall and rules for a set of requests, answered through a
// recording origin.
func observe(t *testing.T, f *incrFixture, rt *Runtime) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("serial %d lineage %s", rt.Serial(), rt.Lineage())
	var hosts []string
	for _, d := range rt.Domains() {
		p := d.tls
		cfg := p.config
		add("domain %s hostnames %v mode %s policy %x", d.Name, d.Hostnames, p.mode, p.id)
		add("  tls min %x protos %v clientAuth %v verifyConnection %v certs %d leaf %x sessionTicketsDisabled %v",
			cfg.MinVersion, cfg.NextProtos, cfg.ClientAuth, cfg.VerifyConnection != nil, len(cfg.Certificates),
			sha256.Sum256(cfg.Certificates[0].Leaf.Raw), cfg.SessionTicketsDisabled)
		add("  key matches leaf %v", cfg.Certificates[0].PrivateKey != nil)
		if p.trust != nil {
			var subjects []string
			for _, c := range p.trust.certs {
				subjects = append(subjects, c.Subject.String())
			}
			add("  trust %s depth %d crls %d bundle %v revoked %v pool equal %v", p.trust.name, p.trust.depth, len(p.trust.crls), subjects,
				len(p.trust.revoked), cfg.ClientCAs != nil && cfg.ClientCAs.Equal(p.trust.pool))
		}
		add("  firewall %v", d.firewall != nil)
		for _, h := range d.Hostnames {
			h = strings.TrimPrefix(h, "*.")
			hosts = append(hosts, h, "api."+h)
		}
	}
	for _, h := range append(hosts, "unknown.test", "") {
		name := "<none>"
		if d := rt.Lookup(h); d != nil {
			name = d.Name
		}
		add("lookup %q -> %s", h, name)
	}
	for _, d := range rt.Domains() {
		h := strings.TrimPrefix(d.Hostnames[0], "*.")
		for _, path := range []string{"/", "/admin1/x", "/admin2"} {
			for _, remote := range []string{"192.0.2.10:4000", "198.51.100.7:4000"} {
				for ci, client := range append([]*pkitest.Certificate{nil}, f.clients...) {
					if (d.tls.mode == ModeOff) != (client == nil) && (d.tls.mode != ModePermissive) {
						continue // Off gets no certificate; Enforce always has one
					}
					add("request %s%s from %s client %d: %s", h, path, remote, ci, incrRequest(t, rt, h, path, remote, client))
				}
			}
		}
	}
	return out
}

// incrRequest runs one request through rt's pipeline, as on a fresh
// connection, and describes the answer.
func incrRequest(t *testing.T, rt *Runtime, host, path, remote string, client *pkitest.Certificate) string {
	r := httptest.NewRequest("GET", "https://"+host+path, nil)
	r.RemoteAddr = remote
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: host, NegotiatedProtocol: "http/1.1"}
	if client != nil {
		r.TLS.PeerCertificates = []*x509.Certificate{client.Cert}
		r.TLS.VerifiedChains = [][]*x509.Certificate{{client.Cert, client.Chain[len(client.Chain)-1]}}
	}
	r = r.WithContext(ConnContext(context.Background(), nil))
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	var hdr []string
	for name, vs := range res.Header {
		if name != "Date" {
			hdr = append(hdr, name+"="+strings.Join(vs, ","))
		}
	}
	sort.Strings(hdr)
	return fmt.Sprintf("%d %v %q", res.StatusCode, hdr, body)
}

// compileErr is the sorted problems of a failed compile (their order
// across kinds follows map iteration).
func compileErr(err error) []string {
	if err == nil {
		return nil
	}
	ce, ok := err.(*CompileError)
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, (&CompileError{Problems: []Problem{p}}).Error())
	}
	sort.Strings(out)
	return out
}

// TestIncrementalEqualsFull applies random sequences of edits — to
// certificates, keys, trust stores and CRLs, network lists, applications,
// firewalls and domains, valid and invalid — and checks after each that
// compiling with the previous runtime gives what a full compile gives:
// the same errors, or the same lookups, TLS configurations and rule
// decisions.
func TestIncrementalEqualsFull(t *testing.T) {
	f := getIncrFixture(t)
	sequences, steps := 8, 25
	if testing.Short() {
		sequences, steps = 2, 12
	}
	reused, served, failed, patched := 0, 0, 0, 0
	for seq := range sequences {
		t.Run(fmt.Sprintf("seed=%d", seq), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seq), 17))
			w := newIncrWorld()
			prev, err := Compile(w.snapshot(t, f, 1), f.options(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { prev.Close() }()
			var log []string
			for step := range steps {
				what := w.edit(r, f)
				log = append(log, what)
				snap := w.snapshot(t, f, int64(step+2))
				full, ferr := Compile(snap, f.options(nil))
				inc, ierr := Compile(snap, f.options(prev))
				if diff := cmp.Diff(compileErr(ferr), compileErr(ierr)); diff != "" {
					t.Fatalf("after %s: errors differ (-full +incremental):\n%s", strings.Join(log, "; "), diff)
				}
				if ferr != nil {
					failed++
					w.fixBroken(f)
					continue
				}
				served++
				if full.patched {
					t.Fatal("a compile without a previous runtime patched one")
				}
				if inc.patched {
					patched++
				}
				if diff := cmp.Diff(runtimeShape(full), runtimeShape(inc)); diff != "" {
					t.Fatalf("after %s: runtimes hold different pieces (-full +incremental):\n%s", strings.Join(log, "; "), diff)
				}
				want, got := observe(t, f, full), observe(t, f, inc)
				full.Close()
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("after %s: runtimes differ (-full +incremental):\n%s", strings.Join(log, "; "), diff)
				}
				for _, d := range inc.Domains() {
					if pd := prev.Lookup(d.Hostnames[0]); pd != nil && pd.tls == d.tls {
						reused++
					}
				}
				prev.Close()
				prev = inc
			}
		})
	}
	t.Logf("%d steps compiled the same (%d of them by patching the previous runtime), %d failed the same; %d TLS configurations reused",
		served, patched, failed, reused)
	if reused == 0 || served < failed || patched == 0 || patched == served {
		t.Error("too few steps compiled, no TLS configuration was ever reused, or one way of compiling was never taken: the test proves little")
	}
}

// runtimeShape names what a runtime and its cache hold, by kind: two
// compiles of one snapshot hold the same names, whichever way they took.
func runtimeShape(rt *Runtime) map[string][]string {
	keys := func(m any) []string {
		var out []string
		for _, k := range reflect.ValueOf(m).MapKeys() {
			out = append(out, fmt.Sprint(k.Interface()))
		}
		sort.Strings(out)
		return out
	}
	c := rt.cache
	var apps []string
	for name, a := range c.apps {
		if rt.apps[name] != a.app {
			apps = append(apps, "runtime and cache differ: "+name)
		}
		if a.refs.Load() <= 0 {
			apps = append(apps, "released: "+name)
		}
	}
	// Every domain holds the runtime's own pieces, and the tables only
	// the runtime's domains.
	var domains []string
	inRuntime := map[*Domain]bool{}
	for _, d := range rt.domains {
		inRuntime[d] = true
		if a := c.apps; !slices.ContainsFunc(slices.Collect(maps.Values(a)), func(a *cachedApp) bool { return a.app == d.app }) {
			domains = append(domains, d.Name+": application not the runtime's")
		}
		if d.firewall != nil && !slices.ContainsFunc(slices.Collect(maps.Values(c.firewalls)), func(f cachedFirewall) bool { return f.fw == d.firewall }) {
			domains = append(domains, d.Name+": firewall not the runtime's")
		}
		if !slices.Contains(slices.Collect(maps.Values(c.certs)), d.tls.cert) {
			domains = append(domains, d.Name+": certificate not the runtime's")
		}
		if c.policies[d.Name] != d.tls {
			domains = append(domains, d.Name+": TLS policy not the runtime's")
		}
	}
	for _, table := range []map[string]*Domain{rt.exact, rt.wildcard} {
		for h, d := range table {
			if !inRuntime[d] {
				domains = append(domains, h+": a domain that is not the runtime's")
			}
		}
	}
	return map[string][]string{
		"domain problems": domains, "exact": keys(rt.exact), "wildcard": keys(rt.wildcard), "apps": keys(rt.apps), "cache apps": keys(c.apps),
		"app problems": apps, "certs": keys(c.certs), "contents": keys(c.byContent), "lists": keys(c.lists),
		"trusts": keys(c.trusts), "firewalls": keys(c.firewalls), "policies": keys(c.policies),
	}
}

// reuseWorld compiles w, then w after change, and returns both runtimes.
func reuseStep(t *testing.T, f *incrFixture, w *incrWorld, change func()) (prev, next *Runtime) {
	t.Helper()
	prev, err := Compile(w.snapshot(t, f, 1), f.options(nil))
	if err != nil {
		t.Fatal(err)
	}
	change()
	next, err = Compile(w.snapshot(t, f, 2), f.options(prev))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prev.Close(); next.Close() })
	return prev, next
}

// TestIncrementalReusesWhatDidNotChange checks, piece by piece, that a
// change recompiles exactly what depends on it: the domains using a
// changed Certificate or TrustedCA get a new TLS configuration (and ticket
// key), the firewalls and applications naming a changed NetworkList are
// compiled again, and everything else is the very same object.
func TestIncrementalReusesWhatDidNotChange(t *testing.T) {
	f := getIncrFixture(t)
	type want struct {
		newPolicies, newApps, newFirewalls []string
	}
	tests := map[string]struct {
		change func(w *incrWorld)
		want   want
	}{
		"nothing": {func(w *incrWorld) {}, want{}},
		"one application": {func(w *incrWorld) { a := w.apps["app1"]; a.version++; w.apps["app1"] = a },
			want{newApps: []string{"app1"}}},
		"one certificate": {func(w *incrWorld) { w.certs["c2"] = 0 },
			want{newPolicies: []string{"dom2"}}},
		"a CRL": {func(w *incrWorld) { tr := w.trusts["ca1"]; tr.crl = false; w.trusts["ca1"] = tr },
			want{newPolicies: []string{"dom1", "dom2"}}},
		"a trust store's depth": {func(w *incrWorld) { tr := w.trusts["ca2"]; tr.depth = 1; w.trusts["ca2"] = tr },
			want{newPolicies: []string{"dom3"}}},
		"a domain's mode": {func(w *incrWorld) { w.domains["dom2"].MTLS.Verification = manifest.VerificationEnforce },
			want{newPolicies: []string{"dom2"}}},
		"a network list": {func(w *incrWorld) { w.lists["blocked"] = []string{"203.0.113.0/24"} },
			want{newApps: []string{"app2"}, newFirewalls: []string{"fw0"}}},
		"a domain's hostnames": {func(w *incrWorld) { w.domains["dom4"].Hostnames = []string{"other.test"} },
			want{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newIncrWorld()
			prev, next := reuseStep(t, f, w, func() { tc.change(w) })
			var got want
			for _, d := range next.Domains() {
				var pd *Domain
				for _, p := range prev.Domains() {
					if p.Name == d.Name {
						pd = p
					}
				}
				if pd.tls != d.tls {
					got.newPolicies = append(got.newPolicies, d.Name)
					if pd.tls.id == d.tls.id {
						t.Errorf("domain %s: a new TLS configuration with the old ticket key identity", d.Name)
					}
				}
			}
			for _, name := range slices.Sorted(mapsKeys(next.apps)) {
				if next.apps[name] != prev.apps[name] {
					got.newApps = append(got.newApps, name)
				} else if next.apps[name].origin != prev.apps[name].origin {
					t.Errorf("application %s reused without its origin pool", name)
				}
			}
			for _, name := range slices.Sorted(mapsKeys(next.cache.firewalls)) {
				if next.cache.firewalls[name].fw != prev.cache.firewalls[name].fw {
					got.newFirewalls = append(got.newFirewalls, name)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("recompiled pieces (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIncrementalOriginPools checks the life of origin pools across
// incremental compiles: an unchanged application keeps its pool (and its
// idle connections) when the previous runtime closes; a changed one gets
// a new pool and the old one is closed with the runtime that used it; a
// failed compile leaves the previous runtime's pools alone; a closed
// runtime given as Previous has its applications compiled anew.
func TestIncrementalOriginPools(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	rt1, err := Compile(w.snapshot(t, f, 1), f.options(nil))
	if err != nil {
		t.Fatal(err)
	}
	get := func(rt *Runtime, host string) {
		t.Helper()
		if res := incrRequest(t, rt, host, "/", "192.0.2.10:4000", nil); !strings.HasPrefix(res, "200 ") {
			t.Fatalf("%s: %s", host, res)
		}
	}
	get(rt1, "dom0.test") // app0
	get(rt1, "dom4.test") // app1
	if IdleOriginConns(rt1, "app0") != 1 || IdleOriginConns(rt1, "app1") != 1 {
		t.Fatalf("idle origin connections: app0 %d, app1 %d; want 1 each", IdleOriginConns(rt1, "app0"), IdleOriginConns(rt1, "app1"))
	}

	// A failed compile from rt1 closes nothing of rt1.
	f.keyOverrides.Store("KEY0", string(f.servers[1].KeyPEM()))
	if _, err := Compile(w.snapshot(t, f, 2), f.options(rt1)); err == nil {
		t.Fatal("a key that does not match compiled")
	}
	f.keyOverrides.Delete("KEY0")
	if IdleOriginConns(rt1, "app0") != 1 {
		t.Fatal("a failed compile closed a pool of the serving runtime")
	}

	a := w.apps["app1"]
	a.version++
	w.apps["app1"] = a
	rt2, err := Compile(w.snapshot(t, f, 3), f.options(rt1))
	if err != nil {
		t.Fatal(err)
	}
	if rt2.apps["app0"].origin != rt1.apps["app0"].origin {
		t.Fatal("the unchanged app0 got a second pool")
	}
	if rt2.apps["app1"].origin == rt1.apps["app1"].origin {
		t.Fatal("the changed app1 kept its pool")
	}
	rt1.Close()
	rt1.Close() // idempotent: must not release twice
	if IdleOriginConns(rt2, "app0") != 1 {
		t.Errorf("closing the previous runtime closed the pool app0 still uses: %d idle", IdleOriginConns(rt2, "app0"))
	}
	if IdleOriginConns(rt1, "app1") != 0 {
		t.Errorf("the replaced pool of app1 keeps %d idle connections", IdleOriginConns(rt1, "app1"))
	}
	get(rt2, "dom0.test")
	get(rt2, "dom4.test")

	// rt2 closed, then used as Previous: nothing closed is reused.
	rt2.Close()
	if IdleOriginConns(rt2, "app0") != 0 {
		t.Fatal("the last runtime using app0 closed, its pool did not")
	}
	rt3, err := Compile(w.snapshot(t, f, 4), f.options(rt2))
	if err != nil {
		t.Fatal(err)
	}
	defer rt3.Close()
	if rt3.apps["app0"] == rt2.apps["app0"] {
		t.Fatal("an application whose pool was closed was reused")
	}
	get(rt3, "dom0.test")
}

// TestIncrementalTicketSecret checks that TLS configurations are not
// reused under another ticket secret (their keys derive from it), nor
// certificates compiled without keys by a compile that needs them.
func TestIncrementalTicketSecret(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	snap := w.snapshot(t, f, 1)
	skip := f.options(nil)
	skip.SkipKeys = true
	validated, err := Compile(snap, skip)
	if err != nil {
		t.Fatal(err)
	}
	defer validated.Close()
	opts := f.options(validated)
	rt, err := Compile(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, d := range rt.Domains() {
		if d.tls.config.Certificates[0].PrivateKey == nil {
			t.Fatalf("domain %s: certificate without its key, reused from a SkipKeys compile", d.Name)
		}
	}
	other := f.options(rt)
	other.TicketSecret = []byte("another secret")
	rt2, err := Compile(snap, other)
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	for i, d := range rt2.Domains() {
		if d.tls == rt.Domains()[i].tls {
			t.Fatalf("domain %s: TLS configuration reused under another ticket secret", d.Name)
		}
	}
	// Without any secret each compile draws its own: nothing to reuse.
	none := f.options(rt)
	none.TicketSecret = nil
	rt3, err := Compile(snap, none)
	if err != nil {
		t.Fatal(err)
	}
	defer rt3.Close()
	if rt3.Domains()[0].tls == rt.Domains()[0].tls {
		t.Fatal("TLS configuration reused under a fresh random ticket secret")
	}
}

// TestIncrementalSessionResumption resumes TLS sessions over loopback
// across an incremental compile that changes a TrustedCA's CRL: the
// domains using it refuse to resume (their ticket key changed with the
// trust store), the other domains resume as before.
func TestIncrementalSessionResumption(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	rt1, err := Compile(w.snapshot(t, f, 1), f.options(nil))
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[Runtime]
	cur.Store(rt1)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		return cur.Load().ConfigForClient(h)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					io.WriteString(c, "ok\n")
				}
			}()
		}
	}()
	caches := map[string]tls.ClientSessionCache{}
	// dial handshakes with domain's first hostname and reports whether the
	// session was resumed.
	dial := func(domain string) bool {
		t.Helper()
		if caches[domain] == nil {
			caches[domain] = tls.NewLRUClientSessionCache(4)
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: domain + ".test", RootCAs: f.edgeCA.Pool(),
			Certificates: []tls.Certificate{f.clients[0].TLSCertificate()}, ClientSessionCache: caches[domain]})
		if err != nil {
			t.Fatalf("%s: %v", domain, err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if line, err := io.ReadAll(conn); err != nil || string(line) != "ok\n" {
			t.Fatalf("%s: read %q, %v", domain, line, err) // the read also takes the session ticket
		}
		return conn.ConnectionState().DidResume
	}
	domains := []string{"dom0", "dom1", "dom2", "dom3"}
	for _, d := range domains {
		if dial(d) {
			t.Fatalf("%s: first handshake resumed", d)
		}
		if !dial(d) {
			t.Fatalf("%s: no resumption before the change; the test cannot tell", d)
		}
	}
	tr := w.trusts["ca1"] // dom1 (enforce) and dom2 (permissive)
	tr.crl = false
	w.trusts["ca1"] = tr
	rt2, err := Compile(w.snapshot(t, f, 2), f.options(rt1))
	if err != nil {
		t.Fatal(err)
	}
	cur.Swap(rt2).Close()
	defer rt2.Close()
	want := map[string]bool{"dom0": true, "dom1": false, "dom2": false, "dom3": true}
	for _, d := range domains {
		if got := dial(d); got != want[d] {
			t.Errorf("%s: resumed %v after the CRL of ca1 changed, want %v", d, got, want[d])
		}
	}
}

// TestIncrementalRateLimits checks that a reload keeps the counters of an
// unchanged Firewall's rate limits, and that a changed Firewall starts
// afresh, as docs/SECURITY.md says.
func TestIncrementalRateLimits(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	fw := w.fws["fw1"] // dom3's
	fw.rate = true
	w.fws["fw1"] = fw
	status := func(rt *Runtime) string {
		t.Helper()
		return strings.Fields(incrRequest(t, rt, "dom3.test", "/", "192.0.2.10:4000", nil))[0]
	}
	rt1, err := Compile(w.snapshot(t, f, 1), f.options(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer rt1.Close()
	if got := status(rt1); got != "200" {
		t.Fatalf("first request: %s", got)
	}
	if got := status(rt1); got != "429" {
		t.Fatalf("second request within the minute: %s, want 429", got)
	}
	a := w.apps["app0"] // an unrelated change
	a.version++
	w.apps["app0"] = a
	rt2, err := Compile(w.snapshot(t, f, 2), f.options(rt1))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if got := status(rt2); got != "429" {
		t.Errorf("after a reload that did not change the Firewall: %s, want 429 (the limit carried over)", got)
	}
	fw.admin++
	w.fws["fw1"] = fw
	rt3, err := Compile(w.snapshot(t, f, 3), f.options(rt2))
	if err != nil {
		t.Fatal(err)
	}
	defer rt3.Close()
	if got := status(rt3); got != "200" {
		t.Errorf("after the Firewall changed: %s, want 200 (a new limit)", got)
	}
}

// TestIncrementalPreviousClosedConcurrently closes the previous runtime
// while a compile reuses it (run it with -race): every application of the
// new runtime must have an open pool, whether it took a reference before
// the close or was compiled anew after it.
func TestIncrementalPreviousClosedConcurrently(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	snap := w.snapshot(t, f, 1)
	for range 20 {
		prev, err := Compile(snap, f.options(nil))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { prev.Close(); close(done) }()
		next, err := Compile(snap, f.options(prev))
		if err != nil {
			t.Fatal(err)
		}
		<-done
		for _, host := range []string{"dom0.test", "dom4.test"} {
			if res := incrRequest(t, next, host, "/", "192.0.2.10:4000", nil); !strings.HasPrefix(res, "200 ") {
				t.Fatalf("%s: %s", host, res)
			}
		}
		if IdleOriginConns(next, "app0") != 1 {
			t.Fatalf("app0: %d idle origin connections after a request, want 1: its pool is closed", IdleOriginConns(next, "app0"))
		}
		next.Close()
	}
}

// TestPatchedDomainsAtEveryPosition: domains added and removed at the
// start, in the middle and at the end of the name order, one reload each,
// are patched into the previous runtime exactly as a full compile builds
// them (the random sequences of TestIncrementalEqualsFull reach the ends
// of the order rarely).
func TestPatchedDomainsAtEveryPosition(t *testing.T) {
	f := getIncrFixture(t)
	w := newIncrWorld()
	prev, err := Compile(w.snapshot(t, f, 1), f.options(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { prev.Close() }()
	add := func(name string) func() {
		return func() {
			w.domains[name] = &manifest.DomainSpec{Hostnames: []string{name + ".test", "*." + name + ".test"}, Certificate: "c1", Application: "app2", Firewall: "fw1"}
		}
	}
	remove := func(name string) func() { return func() { delete(w.domains, name) } }
	steps := []struct {
		what   string
		change func()
	}{
		{"remove the last", remove("dom4")},
		{"remove the first", remove("dom0")},
		{"remove one in the middle", remove("dom2")},
		{"add one at the end", add("dom9")},
		{"add one at the start", add("a-first")},
		{"add one in the middle", add("dom2")},
		{"move a hostname from the last to the first", func() {
			w.domains["dom9"].Hostnames = []string{"dom9.test"}
			w.domains["a-first"].Hostnames = append(w.domains["a-first"].Hostnames, "*.dom9.test")
		}},
		{"remove all but one", func() {
			for name := range w.domains {
				if name != "dom3" {
					delete(w.domains, name)
				}
			}
		}},
	}
	for i, step := range steps {
		step.change()
		snap := w.snapshot(t, f, int64(i+2))
		full, err := Compile(snap, f.options(nil))
		if err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		inc, err := Compile(snap, f.options(prev))
		if err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if !inc.patched {
			t.Errorf("%s: not patched", step.what)
		}
		if diff := cmp.Diff(runtimeShape(full), runtimeShape(inc)); diff != "" {
			t.Errorf("%s: runtimes hold different pieces (-full +patched):\n%s", step.what, diff)
		}
		if diff := cmp.Diff(observe(t, f, full), observe(t, f, inc)); diff != "" {
			t.Errorf("%s: runtimes differ (-full +patched):\n%s", step.what, diff)
		}
		full.Close()
		prev.Close()
		prev = inc
	}
}
