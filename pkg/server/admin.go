package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StateInfo is the JSON document of the admin endpoint /state.
type StateInfo struct {
	Serial  int64  `json:"serial"`
	Lineage string `json:"lineage"`
	// AppliedAt is when the served snapshot was applied.
	AppliedAt *time.Time `json:"appliedAt,omitempty"`
	// Domains are the served domains, sorted by name.
	Domains []DomainInfo `json:"domains"`
	// LastReload is when the state was last reloaded (successfully or
	// not); absent before the first reload after startup.
	LastReload *time.Time `json:"lastReload,omitempty"`
	// LastError is why the last reload failed; empty when it succeeded.
	LastError string `json:"lastError,omitempty"`
}

// DomainInfo describes one served domain.
type DomainInfo struct {
	Name      string   `json:"name"`
	Hostnames []string `json:"hostnames"`
	// Mode is off, enforce or permissive.
	Mode string `json:"mode"`
}

// State describes what the server serves, as /state reports it.
func (s *Server) State() StateInfo {
	rt := s.cur.Load()
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	info := StateInfo{Serial: rt.Serial(), Lineage: rt.Lineage(), LastError: st.lastError, Domains: []DomainInfo{}}
	if !st.appliedAt.IsZero() {
		t := st.appliedAt.UTC()
		info.AppliedAt = &t
	}
	if !st.lastReload.IsZero() {
		t := st.lastReload.UTC()
		info.LastReload = &t
	}
	for _, d := range rt.Domains() {
		info.Domains = append(info.Domains, DomainInfo{Name: d.Name, Hostnames: d.Hostnames, Mode: d.Mode().String()})
	}
	return info
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.State())
	})
	return mux
}

// readyz answers 200 while a runtime serves (naming its serial, and the
// last reload's error if it failed), 503 before the first load and while
// shutting down.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	rt := s.cur.Load()
	switch {
	case rt == nil:
		text(w, http.StatusServiceUnavailable, "not ready: no state loaded\n")
		return
	case s.draining.Load():
		text(w, http.StatusServiceUnavailable, "not ready: shutting down\n")
		return
	}
	s.mu.Lock()
	lastErr := s.status.lastError
	s.mu.Unlock()
	body := fmt.Sprintf("ready: serving serial %d\n", rt.Serial())
	if lastErr != "" {
		body += "last reload failed: " + lastErr + "\n"
	}
	text(w, http.StatusOK, body)
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
