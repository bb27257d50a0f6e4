package edge

import (
	"net/http"
	"strings"

	"github.com/edgectl/edgectl/pkg/rules"
)

// dropUnderscoreHeaders removes the request headers whose names contain
// '_'. By default (allow false) every one is dropped, as nginx does with
// underscores_in_headers off: CGI, WSGI and Rack origins read
// X_Forwarded_For and X-Forwarded-For as the same variable
// (HTTP_X_FORWARDED_FOR), so an underscore spelling could stand in for a
// header the edge sets or removes. With allow set, the names whose dash
// spelling falls in a protected family are still dropped: the forwarding
// headers (Forwarded, X-Forwarded-*, X-Real-Ip, Via, Cdn-Loop), the
// framing and hop-by-hop headers (Content-Length, Transfer-Encoding,
// Host, Connection, Te, Trailer, Upgrade, Keep-Alive, Proxy-*, Expect)
// and the client-identity headers (X-Ssl-*, Ssl-*, X-Client-*,
// Client-Cert*, X-Forwarded-Client-Cert). (The names the application's
// rules add or filter are removed in every spelling by StripHeaders.)
func dropUnderscoreHeaders(h http.Header, allow bool) {
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		if !allow || protectedUnderscoreName(k) {
			delete(h, k)
		}
	}
}

// protectedUnderscoreName reports whether name, its '_' read as '-', is
// one of the protected families.
func protectedUnderscoreName(name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		// No protected name is that long but a prefix family could be:
		// refuse rather than guess.
		return true
	}
	n := string(rules.AppendVariantKey(buf[:0], name)) // does not escape: compared only
	switch n {
	case "forwarded", "x-real-ip", "via", "cdn-loop", "true-client-ip",
		"content-length", "transfer-encoding", "host", "connection", "te", "trailer",
		"upgrade", "keep-alive", "expect":
		return true
	}
	for _, prefix := range []string{"x-forwarded-", "proxy-", "x-ssl-", "ssl-", "x-client-", "client-cert", "x-amzn-mtls-"} {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}
