package httphead

import (
	"net/url"
	"reflect"
	"testing"
)

var targetSeeds = []string{
	"/", "/a/b", "/a?b=c&d", "/a?", "/a??", "/a?b?", "/~user/a-b_c.d", "/a:b@c;d,e=f+g$h&i",
	"/a%20b", "/a b", "/a\x01", "/a#f", "/a!b", "/a*b", "/a(b)", "/a'b", "/a[b]", "/é",
	"//x", "/?\x7f", "/?a b", "/?é", "*", "", "a/b", "http://h/p",
}

// checkOriginForm checks that the fast path yields the URL
// url.ParseRequestURI yields for every target it takes.
func checkOriginForm(t *testing.T, target string) {
	var got url.URL
	if !OriginForm(target, &got) {
		return
	}
	want, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("%q: taken, url.ParseRequestURI fails: %v", target, err)
	}
	if !reflect.DeepEqual(*want, got) {
		t.Fatalf("%q: %#v, url.ParseRequestURI %#v", target, got, *want)
	}
}

func TestOriginForm(t *testing.T) {
	for _, target := range targetSeeds {
		checkOriginForm(t, target)
	}
	for _, target := range []string{"/a/b?c=d", "/", "/a?", "/api/v1/accounts?limit=10"} {
		var u url.URL
		if !OriginForm(target, &u) {
			t.Errorf("%q: not taken by the fast path", target)
		}
	}
	var u url.URL
	if n := testing.AllocsPerRun(100, func() { OriginForm("/api/v1/accounts?limit=10", &u) }); n != 0 {
		t.Errorf("OriginForm allocates %v times", n)
	}
}

// FuzzOriginForm compares the fast path with url.ParseRequestURI.
func FuzzOriginForm(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s)
	}
	f.Fuzz(checkOriginForm)
}
