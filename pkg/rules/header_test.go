package rules

import (
	"net/textproto"
	"testing"
)

// The engine keeps its own copy of net/textproto's header-key
// canonicalization, which it may not import (see TestPackageBoundaries).
// These differential tests hold the copy to the original, byte for byte.

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
