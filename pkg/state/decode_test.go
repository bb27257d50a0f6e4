package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

// scaleResources returns a certificate (a chain of two PEM blocks of about
// 1 KB each), an application and a domain for each of n domains; version
// changes the application of domain changed.
func scaleResources(n, changed, version int) []Resource {
	body := strings.Repeat("MIIB", 250)
	rs := make([]Resource, 0, 3*n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("tenant-%05d", i)
		pem := "-----BEGIN CERTIFICATE-----\n" + body + name + "\n-----END CERTIFICATE-----\n"
		rs = append(rs, Resource{Kind: manifest.KindCertificate, Name: name, Spec: &manifest.CertificateSpec{
			Certificate:          pem + pem,
			PrivateKeyFile:       "/etc/edgectl/keys/" + name + ".pem",
			PublicKeyFingerprint: fmt.Sprintf("sha256:%064x", i),
		}})
		header := "Edge: " + name
		if i == changed {
			header = fmt.Sprintf("Edge: %s-%d", name, version)
		}
		rs = append(rs, Resource{Kind: manifest.KindApplication, Name: name, Labels: map[string]string{"tenant": name}, Spec: &manifest.ApplicationSpec{
			Origin: manifest.Origin{URL: fmt.Sprintf("http://10.0.%d.%d:9000", i/250, i%250)},
			Rules: []manifest.AppRule{{Name: "edge header", Phase: manifest.PhaseResponse,
				Behaviors: []manifest.AppBehavior{{AddResponseHeader: header}}}},
		}})
		rs = append(rs, Resource{Kind: manifest.KindDomain, Name: name, Spec: &manifest.DomainSpec{
			Hostnames: []string{name + ".example.com"}, Certificate: name, Application: name,
		}})
	}
	return rs
}

func encodeTest(tb testing.TB, s *Snapshot) []byte {
	tb.Helper()
	data, err := EncodeSnapshot(s)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// decodeCases are state files the one-pass decoding must decode exactly as
// strictDecode does: the same snapshot, or the same error. fast says
// whether the one-pass path must take it (false: strictDecode decides).
func decodeCases(t testing.TB) map[string]struct {
	data string
	fast bool
} {
	when := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	snap := Next(nil, scaleResources(3, 1, 1), when)
	snap.Lineage = "5d3a8f0e-0c1b-4b7e-9a52-7f1e2d3c4b5a"
	snap.Changes = &ChangeCounts{Create: 9}
	compact, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	const head = `{"formatVersion":1,"lineage":"x","serial":3,"appliedAt":"2026-12-07T10:00:00Z",`
	const dom = `{"kind":"Domain","name":"a","spec":{"hostnames":["a.example"],"certificate":"c","application":"p"}}`
	return map[string]struct {
		data string
		fast bool
	}{
		"indented, as edgectl writes it": {string(encodeTest(t, snap)), true},
		"compact":                        {string(compact), true},
		"no resources member":            {`{"formatVersion":1,"lineage":"x","serial":1}`, true},
		"empty resources":                {head + `"resources":[]}`, true},
		"white space everywhere":         {" \n{ \"formatVersion\" : 1 ,\t\"lineage\":\"x\", \"serial\":2,\r\n \"resources\" : [ " + dom + " , " + dom + " ] } \n", true},
		"escapes in strings":             {head + `"resources":[{"kind":"Domain","name":"a\u0062\"c","spec":{"hostnames":["a\\\"]}"],"certificate":"c\\","application":"p"}}]}`, true},
		"labels":                         {head + `"resources":[{"kind":"Domain","name":"a","labels":{"team":"x"},"spec":{"hostnames":["a.example"]}}]}`, true},
		"members in another order":       {head + `"resources":[{"spec":{"hostnames":["a.example"]},"name":"a","kind":"Domain"}]}`, true},
		"null spec":                      {head + `"resources":[{"kind":"Domain","name":"a","spec":null}]}`, true},
		"resources before the header":    {`{"resources":[` + dom + `],"formatVersion":1,"lineage":"x","serial":3}`, true},
		"repeated header member":         {`{"formatVersion":1,"lineage":"x","lineage":"y","serial":3,"resources":[]}`, true},
		"unknown member in a resource":   {head + `"resources":[{"kind":"Domain","name":"a","note":1,"spec":{}}]}`, true},
		"capitalised member":             {head + `"resources":[{"Kind":"Domain","name":"a","spec":{}}]}`, true},
		"no name":                        {head + `"resources":[{"kind":"Domain","spec":{}}]}`, true},
		"unknown spec member":            {head + `"resources":[{"kind":"Domain","name":"a","spec":{"colour":"red"}}]}`, true},
		"capitalised resources":          {`{"formatVersion":1,"lineage":"x","serial":3,"Resources":[` + dom + `]}`, false},
		"null resources":                 {`{"formatVersion":1,"lineage":"x","serial":3,"resources":null}`, false},
		"repeated resources":             {head + `"resources":[` + dom + `],"resources":[]}`, false},
		"empty":                          {"", false},
		"white space":                    {" \n ", false},
		"bad JSON":                       {`{"formatVersion": 1, "lineage": `, false},
		"JSON array":                     {`[1, 2]`, false},
		"null":                           {`null`, false},
		"foreign JSON":                   {`{"name": "my-app", "version": "1.0.0"}`, false},
		"future format":                  {`{"formatVersion": 2, "lineage": "x", "serial": 4, "resources":[{"kind":"Gateway"}]}`, false},
		"old format":                     {`{"formatVersion": 0, "lineage": "x", "serial": 4}`, false},
		"string format":                  {`{"formatVersion": "1", "lineage": "x", "serial": 4}`, false},
		"no serial":                      {`{"formatVersion": 1, "lineage": "x", "resources":[]}`, false},
		"unknown top-level member":       {head + `"colour":"red","resources":[]}`, false},
		"unknown change count":           {head + `"changes":{"create":1,"renamed":2},"resources":[]}`, false},
		"something after the object":     {head + `"resources":[]} {}`, false},
		"unknown kind":                   {head + `"resources":[{"kind":"Gateway","name":"a","spec":{}}]}`, false},
		"test suites are not state":      {head + `"resources":[{"kind":"TestSuite","name":"a","spec":{}}]}`, false},
		"spec of the wrong type":         {head + `"resources":[{"kind":"Domain","name":"a","spec":{"hostnames":"a.example"}}]}`, false},
		"name of the wrong type":         {head + `"resources":[{"kind":"Domain","name":7,"spec":{}}]}`, false},
		"brackets crossed":               {head + `"resources":[{"kind":"Domain","name":"a","spec":{"hostnames":["a.example"}]}]}`, false},
		"control character in a string":  {head + "\"resources\":[{\"kind\":\"Domain\",\"name\":\"a\",\"spec\":{\"hostnames\":[\"a\x01\"]}}]}", false},
		"missing comma":                  {head + `"resources":[` + dom + dom + `]}`, false},
		"trailing comma":                 {head + `"resources":[` + dom + `,]}`, false},
		"null resource":                  {head + `"resources":[null]}`, false},
		"number resource":                {head + `"resources":[1]}`, false},
		"unterminated string":            {head + `"resources":[{"kind":"Domain}]}`, false},
		"unbalanced":                     {head + `"resources":[{"kind":"Domain","name":"a","spec":{}]}`, false},
		"bad literal in the header":      {`{"formatVersion":1,"lineage":"x","serial":3,"rollbackOf":nul,"resources":[]}`, false},
	}
}

// TestDecodeMatchesStrict holds the one-pass decoding to the reference:
// whatever it decodes, strictDecode decodes to the same snapshot; whatever
// strictDecode refuses, DecodeSnapshot refuses with the same words.
func TestDecodeMatchesStrict(t *testing.T) {
	for name, tc := range decodeCases(t) {
		t.Run(name, func(t *testing.T) {
			data := []byte(tc.data)
			want, wantErr := strictDecode(data)
			got, err := DecodeSnapshot(data)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, strictDecode's %v", err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("snapshot (-strictDecode +DecodeSnapshot):\n%s", diff)
			}
			if _, _, ok := fastDecode(data, nil); ok != tc.fast {
				t.Errorf("one-pass decoding took it: %v, want %v", ok, tc.fast)
			}
			if tc.fast && wantErr != nil {
				t.Errorf("the one-pass decoding took a file strictDecode refuses: %v", wantErr)
			}
		})
	}
}

// TestDecodeReusesUnchangedResources: decoding after a snapshot reuses the
// decoded resources whose bytes are the same (by position, or by kind and
// name when resources were added or removed before them), decodes the
// others, and leaves the earlier snapshot as it was.
func TestDecodeReusesUnchangedResources(t *testing.T) {
	when := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	first := Next(nil, scaleResources(50, 7, 1), when)
	s1, d1, err := decodeSnapshot(encodeTest(t, first), nil)
	if err != nil || d1 == nil {
		t.Fatalf("decoded %v, %v", d1, err)
	}

	changed := Next(first, scaleResources(50, 7, 2), when)
	s2, d2, err := decodeSnapshot(encodeTest(t, changed), d1)
	if err != nil || d2 == nil {
		t.Fatalf("decoded %v, %v", d2, err)
	}
	if diff := cmp.Diff(changed, s2); diff != "" {
		t.Errorf("snapshot after the change (-written +decoded):\n%s", diff)
	}
	if diff := cmp.Diff(first, s1); diff != "" {
		t.Errorf("the earlier snapshot changed (-written +now):\n%s", diff)
	}
	reused := 0
	for i := range s2.Resources {
		same := s1.Resources[i].Spec == s2.Resources[i].Spec
		if s2.Resources[i].ID() == "Application/tenant-00007" {
			if same {
				t.Errorf("%s changed but its earlier spec was reused", s2.Resources[i].ID())
			}
			continue
		}
		if same {
			reused++
		}
	}
	if want := len(s2.Resources) - 1; reused != want {
		t.Errorf("%d unchanged resources reused, want %d", reused, want)
	}

	_, fresh, _ := decodeSnapshot(encodeTest(t, changed), nil)
	sameSplit(t, fresh, d2)

	// A domain added at the front shifts every other resource.
	grown := Next(changed, append(scaleResources(50, 7, 2), Resource{Kind: manifest.KindDomain, Name: "aaa",
		Spec: &manifest.DomainSpec{Hostnames: []string{"aaa.example"}, Certificate: "tenant-00000", Application: "tenant-00000"}}), when)
	s3, d3, err := decodeSnapshot(encodeTest(t, grown), d2)
	if err != nil {
		t.Fatal(err)
	}
	_, fresh, _ = decodeSnapshot(encodeTest(t, grown), nil)
	sameSplit(t, fresh, d3)
	if diff := cmp.Diff(grown, s3); diff != "" {
		t.Errorf("snapshot after the addition (-written +decoded):\n%s", diff)
	}
	byID := map[string]any{}
	for _, r := range s2.Resources {
		byID[r.ID()] = r.Spec
	}
	reused = 0
	for _, r := range s3.Resources {
		if byID[r.ID()] == r.Spec {
			reused++
		}
	}
	if want := len(s3.Resources) - 1; reused != want {
		t.Errorf("after an addition, %d unchanged resources reused, want %d", reused, want)
	}
}

// sameSplit checks that a decoding that reused a previous one (got) found
// the resources where a decoding from scratch (want) did: the next
// decoding compares their bytes.
func sameSplit(t *testing.T, want, got *decoded) {
	t.Helper()
	if (want == nil) != (got == nil) {
		t.Fatalf("decoded from scratch %v, with a previous decoding %v", want != nil, got != nil)
	}
	if want == nil {
		return
	}
	if diff := cmp.Diff(want.starts, got.starts); diff != "" {
		t.Errorf("resource starts (-from scratch +reusing):\n%s", diff)
	}
	if diff := cmp.Diff(want.raws, got.raws); diff != "" {
		t.Errorf("resource bytes (-from scratch +reusing):\n%s", diff)
	}
	if want.arrStart != got.arrStart {
		t.Errorf("resources array at %d, want %d", got.arrStart, want.arrStart)
	}
}

// TestReadAfterReadStillRefusesCorruption: a state file whose resources
// are those of the last read, but which is broken around them, is refused
// with the words strictDecode has for it; the reuse of resources decoded
// before is no way around the checks.
func TestReadAfterReadStillRefusesCorruption(t *testing.T) {
	st := newStore(t)
	written := apply(t, st, 20)
	got, err := st.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(written, got); diff != "" {
		t.Fatalf("read (-written +read):\n%s", diff)
	}
	good := readFile(t, st.Path())
	for name, edit := range map[string]func([]byte) []byte{
		"missing comma between resources": func(b []byte) []byte {
			return bytes.Replace(b, []byte("},\n    {"), []byte("}\n    {"), 1)
		},
		"something after the object": func(b []byte) []byte { return append(append([]byte{}, b...), "[]"...) },
		"unknown top-level member": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"serial":`), []byte(`"colour": 1, "serial":`), 1)
		},
		"newer format": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"formatVersion": 1`), []byte(`"formatVersion": 2`), 1)
		},
		"truncated": func(b []byte) []byte { return b[:len(b)-10] },
	} {
		t.Run(name, func(t *testing.T) {
			bad := edit(good)
			if bytes.Equal(bad, good) {
				t.Fatal("the edit changed nothing")
			}
			if err := os.WriteFile(st.Path(), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, wantErr := strictDecode(bad)
			if wantErr == nil {
				t.Fatal("strictDecode accepts the edited file")
			}
			_, err := st.Read(ctx)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), wantErr.Error()) {
				t.Errorf("read %v, want ErrCorrupt with %q", err, wantErr)
			}
			// And after the refusal (which forgets the last decoding), the
			// good file still reads.
			if err := os.WriteFile(st.Path(), good, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Read(ctx); err != nil || got.Serial != written.Serial {
				t.Fatalf("reading the good file again: %v, %v", got, err)
			}
		})
	}
}

// FuzzDecodeSnapshot compares the one-pass decoding with strictDecode on
// any input, with and without a previous snapshot to reuse resources of.
func FuzzDecodeSnapshot(f *testing.F) {
	cases := decodeCases(f)
	for _, tc := range cases {
		f.Add([]byte(tc.data))
	}
	_, prev, err := decodeSnapshot([]byte(cases["compact"].data), nil)
	if err != nil || prev == nil {
		f.Fatalf("decoding the previous snapshot: %v", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := strictDecode(data)
		var fresh *decoded
		for _, p := range []*decoded{nil, prev} {
			got, d, err := decodeSnapshot(data, p)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, strictDecode's %v", err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("snapshot (-strictDecode +decodeSnapshot):\n%s", diff)
			}
			if p == nil {
				fresh = d
			} else {
				sameSplit(t, fresh, d)
			}
		}
	})
}

// scaleStates are two encodings of a 10,000-domain state (about 20 MB)
// that differ in one domain's application.
func scaleStates(b *testing.B) [2][]byte {
	b.Helper()
	when := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var out [2][]byte
	var prior *Snapshot
	for v := range out {
		prior = Next(prior, scaleResources(10000, 5000, v), when)
		out[v] = encodeTest(b, prior)
	}
	return out
}

// BenchmarkDecodeSnapshot10k decodes a 10,000-domain state from scratch,
// as edgectl plan and a starting server do.
func BenchmarkDecodeSnapshot10k(b *testing.B) {
	data := scaleStates(b)[0]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSnapshot(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileStoreRead10kOneChange reads a 10,000-domain state file in
// which one domain's application changed since the store's last read, as
// a server does on a change.
func BenchmarkFileStoreRead10kOneChange(b *testing.B) {
	states := scaleStates(b)
	st := NewFileStore(b.TempDir() + "/state.json")
	if err := os.WriteFile(st.Path(), states[1], 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Read(ctx); err != nil { // the read before the change
		b.Fatal(err)
	}
	b.SetBytes(int64(len(states[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(st.Path(), states[i%2], 0o644); err != nil {
			b.Fatal(err)
		}
		i++
		b.StartTimer()
		if _, err := st.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStoresReuseUnchangedResources: both stores, reading a state after a
// change, reuse the specs of the resources that did not change from their
// previous read, and read the changed one as written.
func TestStoresReuseUnchangedResources(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"file": func(t *testing.T) Store { return newStore(t) },
		"etcd": func(t *testing.T) Store {
			return newEtcdStore(t, etcdtest.Start(t, etcdtest.Options{}), "reuse", EtcdOptions{})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			when := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			first := Next(nil, scaleResources(20, 3, 1), when)
			if err := st.Write(ctx, first, "", 0); err != nil {
				t.Fatal(err)
			}
			s1, err := st.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			second := Next(first, scaleResources(20, 3, 2), when)
			if err := st.Write(ctx, second, first.Lineage, first.Serial); err != nil {
				t.Fatal(err)
			}
			s2, err := st.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(second, s2); diff != "" {
				t.Errorf("read after the change (-written +read):\n%s", diff)
			}
			if diff := cmp.Diff(first, s1); diff != "" {
				t.Errorf("the first read changed (-written +now):\n%s", diff)
			}
			for i := range s2.Resources {
				shared := s1.Resources[i].Spec == s2.Resources[i].Spec
				if changed := s2.Resources[i].ID() == "Application/tenant-00003"; shared == changed {
					t.Errorf("%s: spec shared with the first read: %v, want %v", s2.Resources[i].ID(), shared, !changed)
				}
			}
		})
	}
}
