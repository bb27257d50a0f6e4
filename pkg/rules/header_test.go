package rules

import (
	"net/textproto"
	"testing"

	"github.com/edgectl/edgectl/pkg/pki"
)

// The engine keeps its own copies of net/textproto's header-key
// canonicalization and pkg/pki's header-safe escaping, which it may not
// import (see TestPackageBoundaries). These differential tests hold each
// copy to the original, byte for byte.

var headerKeySeeds = []string{
	"", "a", "A", "-", "--", "x-client-id", "X-CLIENT-ID", "x_client_id", "X-Client-Id", "content-md5",
	"accept-encoding", "sec-ch-ua", "www-authenticate", "x-1a", "1-a", "a--b", "-a", "a-", "ünicode",
	"x client", "x:client", "x\tclient", "X-Client Id", "x\x7fy", "a.b~c|d", "!#$%&'*+-.^_`|~",
}

func TestCanonicalHeaderKey(t *testing.T) {
	t.Parallel()
	for _, s := range headerKeySeeds {
		if got, want := canonicalHeaderKey(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Errorf("canonicalHeaderKey(%q) = %q, net/textproto says %q", s, got, want)
		}
	}
	// The compiled keys of prefixed variables find net/http's fields.
	if got := headerKey("x_client_ID"); got != "X-Client-Id" {
		t.Errorf("headerKey(x_client_ID) = %q, want X-Client-Id", got)
	}
}

func FuzzCanonicalHeaderKey(f *testing.F) {
	for _, s := range headerKeySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := canonicalHeaderKey(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Fatalf("canonicalHeaderKey(%q) = %q, net/textproto says %q", s, got, want)
		}
	})
}

var headerSafeSeeds = []string{
	"", "plain", "CN=partner,O=Bank", "100%", "a\r\nInjected: 1", "\x00\x1f\x20\x7e\x7f\x80\xff", "tab\there",
	"Paraná", "日本", "%0A",
}

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	for _, s := range headerSafeSeeds {
		checkHeaderSafe(t, s)
	}
}

func FuzzHeaderSafe(f *testing.F) {
	for _, s := range headerSafeSeeds {
		f.Add(s)
	}
	f.Fuzz(checkHeaderSafe)
}

func checkHeaderSafe(t *testing.T, s string) {
	if got, want := string(appendHeaderSafe([]byte("prefix:"), s)), "prefix:"+pki.HeaderSafe(s); got != want {
		t.Errorf("appendHeaderSafe(%q) = %q, pkg/pki says %q", s, got, want)
	}
	if got, want := isHeaderSafe(s), pki.IsHeaderSafe(s); got != want {
		t.Errorf("isHeaderSafe(%q) = %v, pkg/pki says %v", s, got, want)
	}
}
