package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// schemaFiles returns the names of the embedded schema files.
func schemaFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 9 {
		t.Fatalf("embedded %d schema files, want 9: %v", len(names), names)
	}
	return names
}

func readSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not valid JSON: %v", name, err)
	}
	return m
}

func TestFilesCompile(t *testing.T) {
	for _, name := range schemaFiles(t) {
		t.Run(name, func(t *testing.T) {
			m := readSchema(t, name)
			if got, want := m["$schema"], "http://json-schema.org/draft-07/schema#"; got != want {
				t.Errorf("$schema = %v, want %s", got, want)
			}
			if got, want := m["$id"], BaseURL+name; got != want {
				t.Errorf("$id = %v, want %s", got, want)
			}
			if _, err := compile(BaseURL + name); err != nil {
				t.Errorf("%#v", err)
			}
		})
	}
	if _, err := Compile(); err != nil {
		t.Fatalf("Compile: %#v", err)
	}
}

func TestKind(t *testing.T) {
	for kind, file := range kindFiles {
		if _, err := Kind(kind); err != nil {
			t.Errorf("Kind(%q): %v", kind, err)
		}
		if _, err := FS.ReadFile(file); err != nil {
			t.Errorf("kind %s: %v", kind, err)
		}
	}
	if _, err := Kind("Bogus"); err == nil {
		t.Error("Kind(\"Bogus\") succeeded")
	}
}

// conditionals are keywords whose subschemas add constraints to a shape
// declared elsewhere; they are not shapes themselves.
var conditionals = map[string]bool{"if": true, "then": true, "else": true}

// TestEverySchemaIsClosedAndDocumented walks every schema so that the
// guarantees editors and `edgectl validate` rely on cannot rot: unknown
// fields are rejected at every level, and every field is documented.
func TestEverySchemaIsClosedAndDocumented(t *testing.T) {
	for _, name := range schemaFiles(t) {
		var walk func(ptr string, v any)
		walk = func(ptr string, v any) {
			s, ok := v.(map[string]any)
			if !ok {
				return // boolean schema
			}
			if _, ok := s["$ref"]; ok && len(s) > 1 {
				// draft-07 ignores the siblings of $ref, so a description there would never show.
				t.Errorf("%s#%s: $ref has siblings %v; wrap it in allOf", name, ptr, keys(s))
			}
			if props, ok := s["properties"].(map[string]any); ok {
				if s["additionalProperties"] != false {
					t.Errorf("%s#%s: has properties but additionalProperties is %v, want false", name, ptr, s["additionalProperties"])
				}
				for p, ps := range props {
					m, _ := ps.(map[string]any)
					if d, _ := m["description"].(string); strings.TrimSpace(d) == "" {
						t.Errorf("%s#%s/properties/%s: no description", name, ptr, p)
					}
				}
			}
			for _, k := range keys(s) {
				if conditionals[k] {
					continue
				}
				switch k {
				case "properties", "definitions", "patternProperties", "dependencies":
					if m, ok := s[k].(map[string]any); ok {
						for _, p := range keys(m) {
							walk(ptr+"/"+k+"/"+p, m[p])
						}
					}
				case "items", "allOf", "anyOf", "oneOf":
					switch x := s[k].(type) {
					case []any:
						for i, e := range x {
							walk(fmt.Sprintf("%s/%s/%d", ptr, k, i), e)
						}
					default:
						walk(ptr+"/"+k, x)
					}
				case "additionalProperties", "additionalItems", "not", "propertyNames", "contains":
					walk(ptr+"/"+k, s[k])
				}
			}
		}
		walk("", readSchema(t, name))
	}
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func decode(t *testing.T, doc string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("test document is not JSON: %v\n%s", err, doc)
	}
	return v
}

var validDocs = map[string]string{
	"application with limits and policies": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Application", "metadata": {"name": "bounded"},
		"spec": {"origin": {"url": "http://o", "maxConnections": 64, "maxQueue": 0, "queueTimeout": "2s"},
			"maxRequestBodySize": "10MiB", "requestBuffering": {"enabled": true, "size": "65536"},
			"paths": {"escapedSlashes": "keep", "origin": "normalized"}, "underscoresInHeaders": true}}`,
	"certificate inline": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Certificate",
		"metadata": {"name": "api-cert", "labels": {"team": "edge"}},
		"spec": {"certificate": "-----BEGIN CERTIFICATE-----\n...", "privateKeyEnv": "API_CERT_KEY"}}`,
	"certificate files": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Certificate", "metadata": {"name": "a"},
		"spec": {"certificateFile": "certs/api.pem", "privateKeyFile": "certs/api-key.pem"}}`,
	"trusted ca": `{
		"apiVersion": "edgectl.dev/v1", "kind": "TrustedCA", "metadata": {"name": "partner-ca"},
		"spec": {"certificateFile": "certs/root.pem", "crl": "-----BEGIN X509 CRL-----", "crlFiles": ["a.crl", "b.pem"], "verifyDepth": 2}}`,
	"network list": `{
		"apiVersion": "edgectl.dev/v1", "kind": "NetworkList", "metadata": {"name": "office"},
		"spec": {"type": "ipCidr", "items": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}}`,
	"application": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Application", "metadata": {"name": "banking-api"},
		"spec": {
			"origin": {"url": "https://127.0.0.1:9000/base", "hostHeader": "${host}", "connectTimeout": "500ms", "responseTimeout": "1m30s",
				"tls": {"caFile": "origin-ca.pem", "serverName": "origin.internal", "insecureSkipVerify": false}},
			"rules": [
				{"name": "forward client identity", "phase": "request", "active": true,
				 "criteria": [[{"variable": "${ssl_client_escaped_cert}", "operator": "exists"}],
				              [{"conditional": "if", "variable": "${ssl_client_verify}", "operator": "is_equal", "argument": "SUCCESS"},
				               {"conditional": "or", "variable": "${uri}", "operator": "matches", "argument": "^/public/"}]],
				 "behaviors": [
					{"addRequestHeader": "Client-Cert: ${ssl_client_escaped_cert}"},
					{"filterRequestHeader": "X-Debug"},
					{"rewriteRequest": "/v2${uri}"},
					{"finishRequestPhase": true}]},
				{"name": "redirects", "active": false, "behaviors": [
					{"redirectHttpToHttps": true}, {"redirectTo301": "https://x.example/"}, {"redirectTo302": "https://y.example/"},
					{"deny": true}, {"noContent": true}, {"deliver": true}]},
				{"name": "response", "phase": "response", "behaviors": [
					{"addResponseHeader": "Strict-Transport-Security: max-age=63072000"},
					{"filterResponseHeader": "Server"}, {"deliver": true}]}]}}`,
	"application minimal": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Application", "metadata": {"name": "a"},
		"spec": {"origin": {"url": "http://127.0.0.1:9000"}}}`,
	"firewall": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Firewall", "metadata": {"name": "partner-firewall"},
		"spec": {"rules": [
			{"name": "deny partners without a valid certificate", "active": true,
			 "criteria": [[{"variable": "host", "operator": "is_equal", "argument": "api.bank.example"},
			               {"conditional": "and", "variable": "client_certificate_validation", "operator": "is_not_equal", "argument": true}]],
			 "behaviors": [{"deny": true}]},
			{"name": "drop", "criteria": [[{"variable": "network", "operator": "is_in_list", "argument": "blocked"}]], "behaviors": [{"drop": true}]},
			{"name": "rate", "behaviors": [{"setRateLimit": {"type": "second", "limitBy": "clientIp", "averageRateLimit": 10, "maximumBurstSize": 20}}]},
			{"name": "custom", "behaviors": [{"setCustomResponse": {"statusCode": 451, "contentType": "text/plain", "contentBody": "no"}}]}]}}`,
	"domain": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Domain", "metadata": {"name": "open-banking"},
		"spec": {"hostnames": ["api.bank.example", "*.partners.bank.example"], "certificate": "api-cert",
			"application": "banking-api", "firewall": "partner-firewall",
			"mtls": {"enabled": true, "verification": "permissive", "trustedCA": "partner-ca"}}}`,
	"domain mtls off": `{
		"apiVersion": "edgectl.dev/v1", "kind": "Domain", "metadata": {"name": "d"},
		"spec": {"hostnames": ["a.example"], "certificate": "c", "application": "a", "mtls": {"enabled": false}}}`,
	"test suite": `{
		"apiVersion": "edgectl.dev/v1", "kind": "TestSuite", "metadata": {"name": "open-banking"},
		"spec": {"target": "127.0.0.1:8443", "caFile": "certs/root.pem", "cases": [
			{"name": "partner reaches the origin", "serverName": "api.bank.example",
			 "clientCertificate": {"certificateFile": "certs/partner.pem", "privateKeyFile": "certs/partner-key.pem"},
			 "tls": {"minVersion": "1.2", "maxVersion": "1.3"},
			 "request": {"method": "POST", "path": "/accounts?x=1", "headers": {"Accept": "application/json"}, "body": "{}"},
			 "expect": {"handshake": "accepted", "status": 200, "headers": {"Content-Type": "~^application/json"}, "body": "ok",
				"originReached": true, "originHeaders": {"Client-Cert-Subject": "partner-app"}, "originAbsentHeaders": ["X-Debug"]}},
			{"name": "no certificate is refused", "serverName": "api.bank.example",
			 "expect": {"handshake": "rejected", "alert": "certificate_required"}}]}}`,
}

func TestValid(t *testing.T) {
	s, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range validDocs {
		t.Run(name, func(t *testing.T) {
			v := decode(t, doc)
			if err := s.Validate(v); err != nil {
				t.Errorf("%#v", err)
			}
			kind := v.(map[string]any)["kind"].(string)
			ks, err := Kind(kind)
			if err != nil {
				t.Fatal(err)
			}
			if err := ks.Validate(v); err != nil {
				t.Errorf("kind schema: %#v", err)
			}
		})
	}
}

const (
	envelope = `"apiVersion": "edgectl.dev/v1", "metadata": {"name": "x"}`
	domain   = `"hostnames": ["a.example"], "certificate": "c", "application": "a"`
)

// app returns an Application document whose only rule has the given behaviors.
func app(rule string) string {
	return `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o"}, "rules": [` + rule + `]}}`
}

// fw returns a Firewall document with the given rule.
func fw(rule string) string {
	return `{` + envelope + `, "kind": "Firewall", "spec": {"rules": [` + rule + `]}}`
}

func TestInvalid(t *testing.T) {
	s, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	longHeader := "X-Long: " + strings.Repeat("a", 1601-len("X-Long: "))
	tests := []struct {
		name    string
		doc     string
		wantLoc string // InstanceLocation of one of the leaves
		wantMsg string // substring of that leaf's message
	}{
		{"unknown top-level field", `{` + envelope + `, "kind": "Domain", "spec": {` + domain + `}, "extra": 1}`, "", "'extra' not allowed"},
		{"unknown spec field", `{` + envelope + `, "kind": "Domain", "spec": {` + domain + `, "hostname": "a"}}`, "/spec", "'hostname' not allowed"},
		{"unknown behavior", app(`{"name": "r", "behaviors": [{"deny": true}, {"addHeader": "A: b"}]}`), "/spec/rules/0/behaviors/1", "'addHeader' not allowed"},
		{"unknown field in rate limit", fw(`{"name": "r", "behaviors": [{"setRateLimit": {"type": "second", "limitBy": "global", "averageRateLimit": 1, "burst": 2}}]}`), "/spec/rules/0/behaviors/0/setRateLimit", "'burst' not allowed"},
		{"unknown metadata field", `{"apiVersion": "edgectl.dev/v1", "kind": "NetworkList", "metadata": {"name": "x", "namespace": "y"}, "spec": {"type": "ipCidr", "items": ["10.0.0.0/8"]}}`, "/metadata", "'namespace' not allowed"},
		{"unknown kind", `{` + envelope + `, "kind": "Domian", "spec": {}}`, "/kind", "value must be one of"},
		{"wrong apiVersion", `{"apiVersion": "edgectl.dev/v2", "kind": "Domain", "metadata": {"name": "x"}, "spec": {` + domain + `}}`, "/apiVersion", "edgectl.dev/v1"},
		{"missing metadata.name", `{"apiVersion": "edgectl.dev/v1", "kind": "Domain", "metadata": {"labels": {}}, "spec": {` + domain + `}}`, "/metadata", "missing properties: 'name'"},
		{"bad name", `{"apiVersion": "edgectl.dev/v1", "kind": "Domain", "metadata": {"name": "Open_Banking"}, "spec": {` + domain + `}}`, "/metadata/name", "does not match pattern"},
		{"missing spec", `{` + envelope + `, "kind": "Domain"}`, "", "missing properties: 'spec'"},
		{"two behaviors in one map", app(`{"name": "r", "behaviors": [{"deny": true, "deliver": true}]}`), "/spec/rules/0/behaviors/0", "maximum 1 properties"},
		{"empty behavior", fw(`{"name": "r", "behaviors": [{}]}`), "/spec/rules/0/behaviors/0", "minimum 1 properties"},
		{"no behaviors", fw(`{"name": "r", "behaviors": []}`), "/spec/rules/0/behaviors", "minimum 1 items"},
		{"deny false", fw(`{"name": "r", "behaviors": [{"deny": false}]}`), "/spec/rules/0/behaviors/0/deny", "value must be true"},
		{"header without colon", app(`{"name": "r", "behaviors": [{"addRequestHeader": "Client-Cert ${ssl_client_cert}"}]}`), "/spec/rules/0/behaviors/0/addRequestHeader", "does not match pattern"},
		{"header too long", app(`{"name": "r", "behaviors": [{"addResponseHeader": "` + longHeader + `"}]}`), "/spec/rules/0/behaviors/0/addResponseHeader", "length must be <= 1600"},
		{"filter with value", app(`{"name": "r", "behaviors": [{"filterRequestHeader": "X-A: b"}]}`), "/spec/rules/0/behaviors/0/filterRequestHeader", "does not match pattern"},
		{"response behavior in request phase", app(`{"name": "r", "behaviors": [{"addResponseHeader": "A: b"}]}`), "/spec/rules/0/behaviors/0/addResponseHeader", "value must be one of"},
		{"request behavior in response phase", app(`{"name": "r", "phase": "response", "behaviors": [{"deny": true}]}`), "/spec/rules/0/behaviors/0/deny", "value must be one of"},
		{"bad phase", app(`{"name": "r", "phase": "early", "behaviors": [{"deliver": true}]}`), "/spec/rules/0/phase", "value must be one of"},
		{"bad operator", fw(`{"name": "r", "criteria": [[{"variable": "host", "operator": "equals", "argument": "a"}]], "behaviors": [{"deny": true}]}`), "/spec/rules/0/criteria/0/0/operator", "value must be one of"},
		{"bad conditional", fw(`{"name": "r", "criteria": [[{"variable": "host", "operator": "exists"}, {"conditional": "xor", "variable": "host", "operator": "exists"}]], "behaviors": [{"deny": true}]}`), "/spec/rules/0/criteria/0/1/conditional", "value must be one of"},
		{"argument missing", fw(`{"name": "r", "criteria": [[{"variable": "host", "operator": "is_equal"}]], "behaviors": [{"deny": true}]}`), "/spec/rules/0/criteria/0/0", "missing properties: 'argument'"},
		{"argument with exists", fw(`{"name": "r", "criteria": [[{"variable": "host", "operator": "exists", "argument": "a"}]], "behaviors": [{"deny": true}]}`), "/spec/rules/0/criteria/0/0/argument", "not allowed"},
		{"empty criteria group", fw(`{"name": "r", "criteria": [[]], "behaviors": [{"deny": true}]}`), "/spec/rules/0/criteria/0", "minimum 1 items"},
		{"rate limit type", fw(`{"name": "r", "behaviors": [{"setRateLimit": {"type": "hour", "limitBy": "global", "averageRateLimit": 1}}]}`), "/spec/rules/0/behaviors/0/setRateLimit/type", "value must be one of"},
		{"rate limit zero", fw(`{"name": "r", "behaviors": [{"setRateLimit": {"type": "second", "limitBy": "global", "averageRateLimit": 0}}]}`), "/spec/rules/0/behaviors/0/setRateLimit/averageRateLimit", "must be >= 1"},
		{"custom response status", fw(`{"name": "r", "behaviors": [{"setCustomResponse": {"statusCode": 500}}]}`), "/spec/rules/0/behaviors/0/setCustomResponse/statusCode", "must be <= 499"},
		{"custom response body", fw(`{"name": "r", "behaviors": [{"setCustomResponse": {"statusCode": 200, "contentBody": "` + strings.Repeat("x", 501) + `"}}]}`), "/spec/rules/0/behaviors/0/setCustomResponse/contentBody", "length must be <= 500"},
		{"origin url scheme", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "ftp://o"}}}`, "/spec/origin/url", "does not match pattern"},
		{"bad duration", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o", "connectTimeout": "5"}}}`, "/spec/origin/connectTimeout", "does not match pattern"},
		{"bad body size", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o"}, "maxRequestBodySize": "10MB"}}`, "/spec/maxRequestBodySize", "does not match pattern"},
		{"zero origin connections", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o", "maxConnections": 0}}}`, "/spec/origin/maxConnections", "must be >= 1"},
		{"bad escaped-slash policy", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o"}, "paths": {"escapedSlashes": "decode"}}}`, "/spec/paths/escapedSlashes", "value must be one of"},
		{"unknown buffering field", `{` + envelope + `, "kind": "Application", "spec": {"origin": {"url": "http://o"}, "requestBuffering": {"max": "1MiB"}}}`, "/spec/requestBuffering", "'max' not allowed"},
		{"certificate and certificateFile", `{` + envelope + `, "kind": "Certificate", "spec": {"certificate": "PEM", "certificateFile": "c.pem", "privateKeyFile": "k.pem"}}`, "/spec", "valid against schemas at indexes 0 and 1"},
		{"certificate missing", `{` + envelope + `, "kind": "Certificate", "spec": {"privateKeyFile": "k.pem"}}`, "/spec", "missing properties: 'certificate' or missing properties: 'certificateFile'"},
		{"inline private key", `{` + envelope + `, "kind": "Certificate", "spec": {"certificateFile": "c.pem", "privateKey": "PEM"}}`, "/spec", "'privateKey' not allowed"},
		{"trusted ca both", `{` + envelope + `, "kind": "TrustedCA", "spec": {"certificate": "PEM", "certificateFile": "c.pem"}}`, "/spec", "valid against schemas at indexes 0 and 1"},
		{"verify depth", `{` + envelope + `, "kind": "TrustedCA", "spec": {"certificateFile": "c.pem", "verifyDepth": 17}}`, "/spec/verifyDepth", "must be <= 16"},
		{"network list type", `{` + envelope + `, "kind": "NetworkList", "spec": {"type": "asn", "items": ["1"]}}`, "/spec/type", `value must be "ipCidr"`},
		{"network list empty", `{` + envelope + `, "kind": "NetworkList", "spec": {"type": "ipCidr", "items": []}}`, "/spec/items", "minimum 1 items"},
		{"duplicate hostnames", `{` + envelope + `, "kind": "Domain", "spec": {"hostnames": ["a.example", "a.example"], "certificate": "c", "application": "a"}}`, "/spec/hostnames", "are equal"},
		{"domain without application", `{` + envelope + `, "kind": "Domain", "spec": {"hostnames": ["a.example"], "certificate": "c"}}`, "/spec", "missing properties: 'application'"},
		{"enabled mtls without trustedCA", `{` + envelope + `, "kind": "Domain", "spec": {` + domain + `, "mtls": {"enabled": true}}}`, "/spec/mtls", "missing properties: 'trustedCA'"},
		{"bad verification", `{` + envelope + `, "kind": "Domain", "spec": {` + domain + `, "mtls": {"enabled": true, "trustedCA": "ca", "verification": "strict"}}}`, "/spec/mtls/verification", "value must be one of"},
		{"status 700", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": [{"name": "c", "serverName": "a", "expect": {"status": 700}}]}}`, "/spec/cases/0/expect/status", "must be <= 599"},
		{"bad handshake", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": [{"name": "c", "serverName": "a", "expect": {"handshake": "ok"}}]}}`, "/spec/cases/0/expect/handshake", "value must be one of"},
		{"tls version", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": [{"name": "c", "serverName": "a", "tls": {"minVersion": "1.1"}, "expect": {}}]}}`, "/spec/cases/0/tls/minVersion", "value must be one of"},
		{"client certificate without key", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": [{"name": "c", "serverName": "a", "clientCertificate": {"certificateFile": "c.pem"}, "expect": {}}]}}`, "/spec/cases/0/clientCertificate", "missing properties: 'privateKeyFile'"},
		{"case without expect", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": [{"name": "c", "serverName": "a"}]}}`, "/spec/cases/0", "missing properties: 'expect'"},
		{"no cases", `{` + envelope + `, "kind": "TestSuite", "spec": {"cases": []}}`, "/spec/cases", "minimum 1 items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(decode(t, tt.doc))
			if err == nil {
				t.Fatal("document validated")
			}
			if _, ok := err.(*jsonschema.ValidationError); !ok {
				t.Fatalf("error is %T, want *jsonschema.ValidationError: %v", err, err)
			}
			leaves := Leaves(err)
			var got []string
			for _, l := range leaves {
				if l.InstanceLocation == tt.wantLoc && strings.Contains(l.Message, tt.wantMsg) {
					return
				}
				got = append(got, fmt.Sprintf("%q: %s", l.InstanceLocation, l.Message))
			}
			t.Errorf("no error at %q containing %q; got:\n%s\nfull error: %#v", tt.wantLoc, tt.wantMsg, strings.Join(got, "\n"), err)
		})
	}
}

func TestLeavesDeduplicates(t *testing.T) {
	s, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	// The top-level schema and the Domain schema both reject the unknown field.
	err = s.Validate(decode(t, `{`+envelope+`, "kind": "Domain", "spec": {`+domain+`}, "extra": 1}`))
	leaves := Leaves(err)
	if len(leaves) != 1 {
		var got []string
		for _, l := range leaves {
			got = append(got, fmt.Sprintf("%q: %s", l.InstanceLocation, l.Message))
		}
		t.Errorf("got %d leaves, want 1:\n%s", len(leaves), strings.Join(got, "\n"))
	}
	if Leaves(nil) != nil || Leaves(fmt.Errorf("other")) != nil {
		t.Error("Leaves of a non-validation error is not nil")
	}
}

// TestEveryFieldHasItsOwnTypeAndDescription guards what editors need: a
// field whose schema is only {description, allOf: [{$ref}]} makes
// yaml-language-server show the referenced definition's text on hover and
// complete the bare field name without ": ". Every property must carry its
// own type and description, and never reach its shape through allOf.
func TestEveryFieldHasItsOwnTypeAndDescription(t *testing.T) {
	for _, name := range schemaFiles(t) {
		var walk func(ptr string, v any)
		walk = func(ptr string, v any) {
			s, ok := v.(map[string]any)
			if !ok {
				return
			}
			if props, ok := s["properties"].(map[string]any); ok {
				for _, p := range keys(props) {
					ps, _ := props[p].(map[string]any)
					if ps == nil {
						continue // boolean schema inside a conditional
					}
					if _, ok := ps["type"]; !ok {
						t.Errorf("%s#%s/properties/%s: no type", name, ptr, p)
					}
					if all, ok := ps["allOf"].([]any); ok {
						for _, a := range all {
							if m, _ := a.(map[string]any); m != nil && m["$ref"] != nil {
								t.Errorf("%s#%s/properties/%s: shape through allOf/$ref", name, ptr, p)
							}
						}
					}
					walk(ptr+"/properties/"+p, ps)
				}
			}
			for _, k := range []string{"definitions", "items"} {
				switch x := s[k].(type) {
				case map[string]any:
					if k == "definitions" {
						for _, d := range keys(x) {
							walk(ptr+"/definitions/"+d, x[d])
						}
					} else {
						walk(ptr+"/items", x)
					}
				}
			}
		}
		walk("", readSchema(t, name))
	}
}
