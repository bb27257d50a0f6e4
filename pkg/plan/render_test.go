package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// golden compares got with testdata/name; EDGECTL_UPDATE=1 rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("EDGECTL_UPDATE") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with EDGECTL_UPDATE=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; EDGECTL_UPDATE=1 go test ./pkg/plan/ updates it):\n%s", path, diff)
	}
}

func render(t *testing.T, p *Plan, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	switch format {
	case "text":
		err = WriteText(&b, p, TextOptions{})
	case "color":
		err = WriteText(&b, p, TextOptions{Color: true})
	case "json":
		err = WriteJSON(&b, p)
	case "markdown":
		err = WriteMarkdown(&b, p, MarkdownOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRenderersGolden(t *testing.T) {
	empty, err := New(snapshot(4, netList("n", "10.0.0.0/8")), []state.Resource{netList("n", "10.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := New(nil, []state.Resource{netList("n", "10.0.0.0/8"), trustedCA("partner-ca", "ca")})
	if err != nil {
		t.Fatal(err)
	}
	// destroy deletes both deployed Domains and keeps the rest: the
	// renderers warn that nothing is left to serve.
	destroy, err := New(snapshot(9, netList("n", "10.0.0.0/8"), domain("api", nil), domain("portal", nil)), []state.Resource{netList("n", "10.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string]*Plan{"plan": goldenPlan(), "nochange": empty, "first": first, "destroy": destroy}
	files := map[string]string{"text": "txt", "color": "color.txt", "json": "json", "markdown": "md"}
	for name, p := range plans {
		for format, ext := range files {
			t.Run(name+"."+ext, func(t *testing.T) {
				golden(t, name+"."+ext, render(t, p, format))
			})
		}
	}
}

func TestEveryRendererMasksSensitiveValues(t *testing.T) {
	p := goldenPlan()
	found := false
	for _, c := range p.Changes {
		for _, f := range c.Fields {
			found = found || f.Sensitive
		}
	}
	if !found {
		t.Fatal("the golden plan has no sensitive field")
	}
	for _, format := range []string{"text", "color", "json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			out := string(render(t, p, format))
			if strings.Contains(out, "s3cr3t") {
				t.Errorf("the secret appears in the %s output:\n%s", format, out)
			}
			if !strings.Contains(out, Masked) {
				t.Errorf("no %q in the %s output", Masked, format)
			}
		})
	}
}

func TestJSONOutputIsValidAndStable(t *testing.T) {
	out := render(t, goldenPlan(), "json")
	var v struct {
		FormatVersion int      `json:"formatVersion"`
		Changes       []Change `json:"changes"`
		Summary       Summary  `json:"summary"`
		Desired       any      `json:"desired"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	if v.FormatVersion != FormatVersion || v.Summary != (Summary{Create: 2, Update: 3, Delete: 2}) || v.Desired != nil {
		t.Errorf("formatVersion %d, summary %+v, desired %v", v.FormatVersion, v.Summary, v.Desired)
	}
	if again := render(t, goldenPlan(), "json"); !bytes.Equal(out, again) {
		t.Error("two renderings of the same plan differ")
	}
}

func TestMarkdownStaysUnderTheCommentLimit(t *testing.T) {
	var prior, desired []state.Resource
	for i := 0; i < 3000; i++ {
		name := fmt.Sprintf("d%04d", i)
		prior = append(prior, domain(name, nil))
		desired = append(desired, domain(name, func(d *manifest.DomainSpec) {
			d.Firewall = "fw"
			d.Hostnames = append(d.Hostnames, "x."+name+".example")
		}))
		prior = append(prior, netList("gone-"+name, "10.0.0.0/8"))
	}
	p, err := New(snapshot(1, prior...), desired)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 5000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMarkdown(&b, p, MarkdownOptions{MaxLength: limit}); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			max := limit
			if max == 0 {
				max = MaxCommentLength
			}
			if len(out) > max {
				t.Errorf("%d bytes, over the limit %d", len(out), max)
			}
			if !strings.Contains(out, "more changes not shown: this comment is limited to 65536 characters") {
				t.Errorf("no truncation note:\n%s", out[len(out)-300:])
			}
			if strings.Count(out, "<details>") != strings.Count(out, "</details>") || strings.Count(out, "```")%2 != 0 {
				t.Error("unbalanced details blocks or code fences")
			}
			if !strings.Contains(out, "⚠️ **This plan deletes 3000 resources:**") || !strings.Contains(out, "and 2980 more") {
				t.Error("no deletion warning with a bounded list")
			}
		})
	}
}

func TestMarkdownValuesAreBoundedAndFenced(t *testing.T) {
	long := strings.Repeat("a", 5000) + "```"
	p, err := New(nil, []state.Resource{app("a", func(a *manifest.ApplicationSpec) { a.Rules[1].Behaviors[0] = header("X-Long: " + long) })})
	if err != nil {
		t.Fatal(err)
	}
	out := string(render(t, p, "markdown"))
	if strings.Contains(out, strings.Repeat("a", 400)) || !strings.Contains(out, "… (truncated)") {
		t.Error("long value not truncated")
	}
	p2, _ := New(nil, []state.Resource{app("a", func(a *manifest.ApplicationSpec) { a.Rules[1].Behaviors[0] = header("X-Ticks: ```") })})
	out = string(render(t, p2, "markdown"))
	if !strings.Contains(out, "````diff\n") {
		t.Errorf("a value with a backtick fence is not fenced with a longer one:\n%s", out)
	}
}

func TestPlanFileRoundTrip(t *testing.T) {
	p := goldenPlan()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Rendering the loaded plan gives the same text as the original.
	if diff := cmp.Diff(string(render(t, p, "text")), string(render(t, got, "text"))); diff != "" {
		t.Errorf("text of the loaded plan (-want +got):\n%s", diff)
	}
}

func TestUnmarshalRefusesWhatIsNotASavedPlan(t *testing.T) {
	rendering := render(t, goldenPlan(), "json")
	stateFile, _ := state.EncodeSnapshot(snapshot(2, netList("n")))
	saved, _ := goldenPlan().Marshal()
	future := bytes.Replace(saved, []byte(`"formatVersion": 1`), []byte(`"formatVersion": 2`), 1)
	tests := map[string]struct {
		data []byte
		want string
	}{
		"future format":     {future, "plan format version 2 is not supported: this edgectl reads version 1; make the plan again with this edgectl"},
		"-o json rendering": {rendering, "it is a rendering (edgectl plan -o json), not a saved plan"},
		"state file":        {stateFile, "not an edgectl plan: this is a state file"},
		"foreign JSON":      {[]byte(`{"name": "x"}`), "not an edgectl plan (it has no formatVersion)"},
		"not JSON":          {[]byte("+ Domain/api\n"), "not an edgectl plan: invalid character"},
		"unknown field":     {bytes.Replace(saved, []byte(`"lineage"`), []byte(`"extra": 1, "lineage"`), 1), `unknown field "extra"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Unmarshal(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	prior := snapshot(7, netList("n", "10.0.0.0/8"))
	p, err := New(prior, []state.Resource{netList("n", "10.0.0.0/8", "::1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(prior); err != nil {
		t.Fatalf("Verify against the same state: %v", err)
	}
	moved := snapshot(8, netList("n", "10.0.0.0/8"))
	if err := p.Verify(moved); !errors.Is(err, state.ErrStale) {
		t.Errorf("Verify after the serial moved: %v", err)
	}
	first, _ := New(nil, []state.Resource{netList("n")})
	if err := first.Verify(nil); err != nil {
		t.Errorf("first plan against the empty store: %v", err)
	}
	applied := first.Snapshot(time.Now())
	if err := first.Verify(applied); !errors.Is(err, state.ErrStale) || !strings.Contains(err.Error(), "made against an empty state") {
		t.Errorf("first plan applied twice: %v", err)
	}
	edited := *p
	edited.Desired = []state.Resource{netList("n", "10.0.0.0/8", "::2")}
	if err := edited.Verify(prior); err == nil || !strings.Contains(err.Error(), "was the file edited?") {
		t.Errorf("edited plan: %v", err)
	}
}

func TestSnapshotContinuesTheHistory(t *testing.T) {
	now := time.Date(2025, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))
	p, _ := New(snapshot(7, netList("n")), []state.Resource{netList("m")})
	s := p.Snapshot(now)
	if s.Lineage != p.Lineage || s.Serial != 8 || !s.AppliedAt.Equal(now) || s.AppliedAt.Location() != time.UTC || len(s.Resources) != 1 {
		t.Errorf("snapshot = %+v", s)
	}
	first, _ := New(nil, nil)
	if s := first.Snapshot(now); s.Lineage == "" || s.Serial != 1 {
		t.Errorf("first snapshot = %+v", s)
	}
}

func TestDestroyGuard(t *testing.T) {
	deployed := snapshot(3, netList("n", "10.0.0.0/8"), domain("api", nil), domain("portal", nil))
	for name, tc := range map[string]struct {
		prior   *state.Snapshot
		desired []state.Resource
		want    []string
	}{
		"empty input against deployed domains": {deployed, nil, []string{"api", "portal"}},
		"only the domains removed":             {deployed, []state.Resource{netList("n", "10.0.0.0/8")}, []string{"api", "portal"}},
		"one domain left":                      {deployed, []state.Resource{domain("portal", nil)}, nil},
		"a new domain replaces the old ones":   {deployed, []state.Resource{domain("shop", nil)}, nil},
		"empty input against an empty state":   {nil, nil, nil},
		"no domain deployed, none desired":     {snapshot(1, netList("n", "10.0.0.0/8")), nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := New(tc.prior, tc.desired)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.DestroysDomains); diff != "" {
				t.Errorf("DestroysDomains (-want +got):\n%s", diff)
			}
			if (p.DestroyMessage() != "") != (tc.want != nil) {
				t.Errorf("DestroyMessage() = %q", p.DestroyMessage())
			}
			// A saved plan keeps the guard, and Verify catches an edited one.
			data, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			saved, err := Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, saved.DestroysDomains); diff != "" {
				t.Errorf("saved DestroysDomains (-want +got):\n%s", diff)
			}
			if tc.want != nil {
				saved.DestroysDomains = nil
				if err := saved.Verify(tc.prior); err == nil {
					t.Error("Verify accepted a saved plan whose destroy guard was removed")
				}
			}
		})
	}
}
