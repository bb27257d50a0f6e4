// Command origin is the demo's banking API: a tiny HTTP server that answers
// every request with the request line and the headers it received, so that
// the demo shows what the edge forwarded (the partner's identity headers,
// X-Forwarded-For, and no header a client tried to forge). Long values,
// such as the percent-encoded certificate in Client-Cert, are shortened.
//
//	go run ./examples/open-banking/origin -listen 127.0.0.1:9000
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "`ADDRESS` to listen on (the example's origin URL)")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	log.SetFlags(0)
	log.SetPrefix("origin: ")
	log.Printf("listening on http://%s", *listen)
	if err := srv.ListenAndServe(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// echo writes the request line and the received headers, sorted by name.
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	fmt.Fprintf(&b, "origin received %s %s (Host: %s)\n", r.Method, r.URL.RequestURI(), r.Host)
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range r.Header[name] {
			if len(v) > 72 {
				v = fmt.Sprintf("%s… (%d characters)", v[:60], len(v))
			}
			fmt.Fprintf(&b, "  %s: %s\n", name, v)
		}
	}
	fmt.Fprint(w, b.String())
}
