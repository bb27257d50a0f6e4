package validate

import (
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func TestTeachVariable(t *testing.T) {
	docs, diags := manifest.Parse("app.yaml", "/m", []byte(`apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: app}
spec:
  origin: {url: "http://127.0.0.1:9000"}
  rules:
    - name: request
      behaviors: [{addRequestHeader: "X: y"}]
    - name: response
      phase: response
      behaviors: [{addResponseHeader: "X: y"}]
`))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	doc := docs[0]
	for name, tc := range map[string]struct {
		path, msg string
		want      string // prefix of the new message
		list      string // a name the list holds
		notInList string
	}{
		"meaning wins over a far spelling": {
			"spec.rules[0].behaviors[0].addRequestHeader", `unknown variable "${ssl_client_subject}"; did you mean "${arg_client_subject}"?`,
			`unknown variable "${ssl_client_subject}"; did you mean "${ssl_client_s_dn}"? Request-phase variables: args, host,`, "ssl_client_verify", "upstream_status",
		},
		"a typo keeps its spelling": {
			"spec.rules[0].behaviors[0].addRequestHeader", `unknown variable "${ssl_client_s_dn_parsd}"; did you mean "${ssl_client_s_dn}"?`,
			`unknown variable "${ssl_client_s_dn_parsd}"; did you mean "${ssl_client_s_dn_parsed}"?`, "http_<header>", "sent_http_<header>",
		},
		"common name": {
			"spec.rules[0].behaviors[0].addRequestHeader", `unknown variable "${client_common_name}"`,
			`unknown variable "${client_common_name}"; did you mean "${ssl_client_s_dn_parsed}"?`, "uri", "status,",
		},
		"the response phase lists its own variables": {
			"spec.rules[1].behaviors[0].addResponseHeader", `unknown variable "${origin_status_code}"`,
			`unknown variable "${origin_status_code}"; did you mean "${status}"? Response-phase variables:`, "upstream_http_<header>", "",
		},
		"a prefixed family with the misspelt suffix": {
			"spec.rules[0].behaviors[0].addRequestHeader", `unknown variable "${htp_user_agent}"; did you mean "${http_user_agent}"?`,
			`unknown variable "${htp_user_agent}"; did you mean "${http_user_agent}"?`, "cookie_<name>", "",
		},
		"nothing close: the list alone": {
			"spec.rules[0].behaviors[0].addRequestHeader", `unknown variable "${zzzzzzzz}"`,
			`unknown variable "${zzzzzzzz}". Request-phase variables: `, "host", "",
		},
		"firewall by meaning": {
			"spec.rules[0].criteria[0][0].variable", `unknown firewall variable "client_ip"`,
			`unknown firewall variable "client_ip"; did you mean "network"? Firewall variables: client_certificate_validation,`, "header_user_agent", "remote_addr",
		},
		"firewall ${} spelling kept": {
			"spec.rules[0].criteria[0][0].variable", `unknown firewall variable "${client_subject}"`,
			`unknown firewall variable "${client_subject}"; did you mean "ssl_client_s_dn"?`, "network", "",
		},
		"an application variable in the firewall is left as it is": {
			"spec.rules[0].criteria[0][0].variable", `unknown firewall variable "${ssl_client_verify}"; it is an application variable, which the firewall does not have`,
			`unknown firewall variable "${ssl_client_verify}"; it is an application variable, which the firewall does not have`, "", "",
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := teachVariable(doc, tc.path, tc.msg)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s...", got, tc.want)
			}
			if tc.list != "" && !strings.Contains(got, tc.list) {
				t.Errorf("the list lacks %s: %s", tc.list, got)
			}
			if tc.notInList != "" && strings.Contains(got, tc.notInList) {
				t.Errorf("the list has %s: %s", tc.notInList, got)
			}
		})
	}
}
