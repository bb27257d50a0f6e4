package edgetest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// OriginRequest is one request a recording origin received.
type OriginRequest struct {
	// Application is the name of the Application whose origin received it.
	Application string `json:"application"`
	// Method is the request's method.
	Method string `json:"method"`
	// URI is the request target (path and query) the origin received.
	URI string `json:"uri"`
	// Host is the Host header the origin received.
	Host string `json:"host"`
	// Header holds the headers the origin received, CaseHeader removed.
	Header http.Header `json:"headers"`
}

func (r OriginRequest) summary() string {
	return fmt.Sprintf("%s %s to application %s", r.Method, r.URI, r.Application)
}

// Recorder is a recording origin: an http.Handler per application that
// records each request under the CaseHeader it carries, removes that
// header, and answers 200.
type Recorder struct {
	mu   sync.Mutex
	byID map[string][]OriginRequest
}

var _ Origin = (*Recorder)(nil)

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{byID: map[string][]OriginRequest{}} }

// Handler returns the origin of the named application.
func (rec *Recorder) Handler(application string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(CaseHeader)
		r.Header.Del(CaseHeader)
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxBody))
		req := OriginRequest{Application: application, Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()}
		rec.mu.Lock()
		rec.byID[id] = append(rec.byID[id], req)
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "edgectl test: recording origin of application %s received %s %s\n", application, r.Method, r.RequestURI)
	})
}

// Received returns the requests recorded for id.
func (rec *Recorder) Received(id string) []OriginRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]OriginRequest(nil), rec.byID[id]...)
}
