package schemas

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file drive yaml-language-server, the engine of the VS
// Code YAML extension, over LSP (JSON-RPC on stdio), as an editor does, with
// the schemas of this directory: diagnostics, completion and hover must
// work for a manifest that carries the README's modeline.

// lspServer finds the yaml-language-server installed by make tools; the
// test is skipped without it (it fails when CI=true).
func lspServer(t *testing.T) (node, script string) {
	t.Helper()
	missing := func(what string) {
		msg := what + ": run make tools (it installs node, npm and tools/editor's pinned yaml-language-server)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	script, err = filepath.Abs("../tools/editor/node_modules/yaml-language-server/bin/yaml-language-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		missing("yaml-language-server not installed in tools/editor")
	}
	return node, script
}

// lsp is a minimal LSP client.
type lsp struct {
	t      *testing.T
	in     io.WriteCloser
	mu     sync.Mutex
	nextID int
	// replies by request id, notifications by method.
	replies chan map[string]any
	notes   chan map[string]any
	config  any
}

func startLSP(t *testing.T, root string, settings map[string]any) *lsp {
	node, script := lspServer(t)
	cmd := exec.Command(node, script, "--stdio")
	cmd.Dir = root
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &lsp{t: t, in: in, replies: make(chan map[string]any, 16), notes: make(chan map[string]any, 64), config: settings}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	go c.read(bufio.NewReader(out))
	c.call("initialize", map[string]any{
		"processId": os.Getpid(),
		"rootUri":   fileURI(root),
		"capabilities": map[string]any{
			"workspace": map[string]any{"configuration": true},
			"textDocument": map[string]any{
				"completion":         map[string]any{"completionItem": map[string]any{"snippetSupport": true, "documentationFormat": []string{"markdown", "plaintext"}}},
				"hover":              map[string]any{"contentFormat": []string{"markdown", "plaintext"}},
				"publishDiagnostics": map[string]any{},
			},
		},
	})
	c.notify("initialized", map[string]any{})
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings})
	return c
}

func fileURI(p string) string { return "file://" + filepath.ToSlash(p) }

func (c *lsp) write(msg map[string]any) {
	msg["jsonrpc"] = "2.0"
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b); err != nil {
		c.t.Errorf("lsp write: %v", err)
	}
}

func (c *lsp) read(r *bufio.Reader) {
	for {
		var n int
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(c.notes)
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			close(c.notes)
			return
		}
		var msg map[string]any
		if err := json.Unmarshal(body, &msg); err != nil {
			continue
		}
		_, hasID := msg["id"]
		method, _ := msg["method"].(string)
		switch {
		case hasID && method != "": // a request from the server
			var result any
			if method == "workspace/configuration" {
				var items []any
				params, _ := msg["params"].(map[string]any)
				list, _ := params["items"].([]any)
				for _, it := range list {
					section, _ := it.(map[string]any)["section"].(string)
					items = append(items, c.section(section))
				}
				result = items
			}
			c.write(map[string]any{"id": msg["id"], "result": result})
		case hasID:
			c.replies <- msg
		default:
			select {
			case c.notes <- msg:
			default: // an editor drops what it does not read
			}
		}
	}
}

// section returns a dotted section of the settings, such as "yaml".
func (c *lsp) section(name string) any {
	var v any = c.config
	if name == "" {
		return v
	}
	for _, k := range strings.Split(name, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func (c *lsp) notify(method string, params any) {
	c.write(map[string]any{"method": method, "params": params})
}

func (c *lsp) call(method string, params any) map[string]any {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	c.write(map[string]any{"id": id, "method": method, "params": params})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case msg := <-c.replies:
			if fmt.Sprint(msg["id"]) != strconv.Itoa(id) {
				continue
			}
			if e, ok := msg["error"]; ok {
				c.t.Fatalf("%s: %v", method, e)
			}
			r, _ := msg["result"].(map[string]any)
			if r == nil {
				if list, ok := msg["result"].([]any); ok {
					r = map[string]any{"items": list}
				}
			}
			return r
		case <-deadline:
			c.t.Fatalf("%s: no reply in 30s", method)
		}
	}
}

// open opens a document and returns its diagnostics once published.
func (c *lsp) open(path, text string) []map[string]any {
	c.t.Helper()
	uri := fileURI(path)
	c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n, ok := <-c.notes:
			if !ok {
				c.t.Fatal("yaml-language-server exited")
			}
			if n["method"] != "textDocument/publishDiagnostics" {
				continue
			}
			p := n["params"].(map[string]any)
			if p["uri"] != uri {
				continue
			}
			var out []map[string]any
			for _, d := range p["diagnostics"].([]any) {
				out = append(out, d.(map[string]any))
			}
			return out
		case <-deadline:
			c.t.Fatalf("no diagnostics for %s in 30s", path)
		}
	}
}

// pos is the position of the first occurrence of needle after the line
// that starts with after (0-based line and character, as LSP counts them).
func pos(t *testing.T, text, after, needle string) map[string]any {
	t.Helper()
	lines := strings.Split(text, "\n")
	started := after == ""
	for i, l := range lines {
		if !started {
			started = strings.HasPrefix(l, after)
			continue
		}
		if j := strings.Index(l, needle); j >= 0 {
			return map[string]any{"line": i, "character": j}
		}
	}
	t.Fatalf("%q not found after %q", needle, after)
	return nil
}

// workspace copies the schemas into dir/schemas and returns the path of a
// manifest two levels below dir, so that the README's modeline
// "$schema=../../schemas/edgectl.json" finds them.
func workspace(t *testing.T) (dir, manifest string) {
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(FS, "*.json")
	for _, n := range names {
		b, _ := FS.ReadFile(n)
		if err := os.WriteFile(filepath.Join(dir, "schemas", n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "manifests", "prod"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "manifests", "prod", "edge.yaml")
}

var lspSettings = map[string]any{"yaml": map[string]any{
	"validate": true, "hover": true, "completion": true,
	"schemaStore": map[string]any{"enable": false},
}}

const modeline = "# yaml-language-server: $schema=../../schemas/edgectl.json\n"

func TestEditorDiagnostics(t *testing.T) {
	dir, path := workspace(t)
	c := startLSP(t, dir, lspSettings)
	text := modeline + `apiVersion: edgectl.dev/v1
kind: Domain
metadata:
  name: open-banking
spec:
  hostnames: [api.bank.example]
  certificate: api-cert
  aplication: banking-api
  mtls:
    enabled: true
    verification: strict
`
	diags := c.open(path, text)
	want := map[int]string{
		pos(t, text, "", "aplication")["line"].(int):   "aplication",
		pos(t, text, "", "verification")["line"].(int): "enforce",
	}
	got := map[int]string{}
	for _, d := range diags {
		r := d["range"].(map[string]any)["start"].(map[string]any)
		got[int(r["line"].(float64))] += d["message"].(string) + "\n"
	}
	for line, frag := range want {
		if !strings.Contains(got[line], frag) {
			t.Errorf("line %d: diagnostics %q, want one mentioning %q (all: %v)", line+1, got[line], frag, diags)
		}
	}
	// mtls.enabled without trustedCA, and the missing application, are reported too.
	all := fmt.Sprint(diags)
	for _, frag := range []string{"trustedCA", "application"} {
		if !strings.Contains(all, frag) {
			t.Errorf("no diagnostic mentions %q: %v", frag, diags)
		}
	}
}

func TestEditorCompletion(t *testing.T) {
	dir, path := workspace(t)
	c := startLSP(t, dir, lspSettings)
	text := modeline + `apiVersion: edgectl.dev/v1
kind: Domain
metadata:
  name: open-banking
spec:
  firewall: partner-firewall
  
`
	c.open(path, text)
	at := pos(t, text, "  firewall", "")
	at["character"] = 2
	res := c.call("textDocument/completion", map[string]any{"textDocument": map[string]any{"uri": fileURI(path)}, "position": at})
	items := map[string]string{}
	list, _ := res["items"].([]any)
	for _, it := range list {
		m := it.(map[string]any)
		ins, _ := m["insertText"].(string)
		if te, ok := m["textEdit"].(map[string]any); ok && ins == "" {
			ins, _ = te["newText"].(string)
		}
		items[m["label"].(string)] = ins
	}
	// Scalars insert "name: ", objects "name:" and an indented line, lists
	// "name:" and an indented "- ".
	for label, prefix := range map[string]string{
		"certificate": "certificate: ", "application": "application: ",
		"mtls": "mtls:\n  ", "hostnames": "hostnames:\n  - ",
	} {
		ins, ok := items[label]
		if !ok {
			t.Errorf("no completion for %q; got %v", label, items)
			continue
		}
		if !strings.HasPrefix(ins, prefix) {
			t.Errorf("completing %q inserts %q, want it to start with %q", label, ins, prefix)
		}
	}
	if _, ok := items["firewall"]; ok {
		t.Errorf("completion offers firewall again: %v", items)
	}
}

func TestEditorHover(t *testing.T) {
	dir, path := workspace(t)
	c := startLSP(t, dir, lspSettings)
	text := modeline + `apiVersion: edgectl.dev/v1
kind: Domain
metadata:
  name: open-banking
spec:
  hostnames: [api.bank.example]
  certificate: api-cert
  application: banking-api
  firewall: partner-firewall
  mtls:
    enabled: true
    trustedCA: partner-ca
`
	c.open(path, text)
	tests := map[string]string{
		"certificate": "The name of the Certificate presented for these hostnames.",
		"application": "The name of the Application that handles requests.",
		"firewall":    "The name of the Firewall whose rules run before the application",
		"trustedCA":   "The name of the TrustedCA that verifies client certificates",
		"name":        "Identifies the resource among those of its kind",
		"mtls":        "Configures client-certificate verification",
	}
	for field, want := range tests {
		t.Run(field, func(t *testing.T) {
			at := pos(t, text, "apiVersion", "  "+field+":")
			at["character"] = at["character"].(int) + 3
			res := c.call("textDocument/hover", map[string]any{"textDocument": map[string]any{"uri": fileURI(path)}, "position": at})
			got := fmt.Sprint(res["contents"])
			if !strings.Contains(got, want) {
				t.Errorf("hover on %s shows %q, want its own description %q", field, got, want)
			}
		})
	}
}

// TestEditorSettingsMapping: without a modeline, the README's settings
// mapping ("yaml.schemas") applies the schema to the manifests.
func TestEditorSettingsMapping(t *testing.T) {
	dir, path := workspace(t)
	settings := map[string]any{"yaml": map[string]any{
		"validate": true, "hover": true, "completion": true,
		"schemaStore": map[string]any{"enable": false},
		"schemas":     map[string]any{"./schemas/edgectl.json": []string{"manifests/**/*.yaml"}},
	}}
	c := startLSP(t, dir, settings)
	text := `apiVersion: edgectl.dev/v1
kind: NetworkList
metadata:
  name: office
spec:
  type: ipCidr
  items: [10.0.0.0/8]
  extra: true
`
	diags := c.open(path, text)
	if len(diags) != 1 || !strings.Contains(fmt.Sprint(diags[0]["message"]), "extra") {
		t.Fatalf("diagnostics %v, want one about extra", diags)
	}
	if line := diags[0]["range"].(map[string]any)["start"].(map[string]any)["line"].(float64); int(line) != 7 {
		t.Errorf("diagnostic on line %v, want 8", line+1)
	}
}
