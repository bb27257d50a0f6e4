package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgectl/edgectl/pkg/state"
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
	// Store is the state store's connection.
	Store StoreInfo `json:"store"`
}

// StoreInfo describes the state store as the server last observed it.
type StoreInfo struct {
	// Kind is "etcd" for a watched etcd store, else "file".
	Kind string `json:"kind"`
	// Connected says whether the store answered last time it was asked (a
	// file store is always connected). While it is false the server keeps
	// serving its current runtime and retries with backoff.
	Connected bool `json:"connected"`
	// Revision is the store's revision of the state key last seen (etcd's
	// ModRevision); absent for a file store and before the first
	// observation.
	Revision int64 `json:"revision,omitempty"`
	// LastError is why the store cannot be reached, or why its content
	// cannot be used; empty when the last observation was good.
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
	info := StateInfo{Serial: rt.Serial(), Lineage: rt.Lineage(), LastError: st.lastError, Domains: []DomainInfo{},
		Store: StoreInfo{Kind: s.storeKind(), Connected: st.store.connected, Revision: st.store.revision, LastError: st.store.lastError}}
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

// storeKind names the kind of the state store for /state.
func (s *Server) storeKind() string {
	if state.IsEtcdLocation(s.cfg.Store.String()) {
		return "etcd"
	}
	return "file"
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

// readyz answers 200 while a runtime serves at least one Domain (naming
// its serial, the last reload's error if it failed, and the store's if it
// cannot be reached); 503 before the first load, while the served serial
// has no Domain (every handshake is refused, so a load balancer should
// send the traffic elsewhere) and while shutting down. An unreachable
// store does not make a serving node unready.
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
	lastErr, store := s.status.lastError, s.status.store
	s.mu.Unlock()
	status := http.StatusOK
	body := fmt.Sprintf("ready: serving serial %d\n", rt.Serial())
	if len(rt.Domains()) == 0 {
		status = http.StatusServiceUnavailable
		body = fmt.Sprintf("not ready: serial %d has no Domain, so every handshake is refused\n", rt.Serial())
	}
	if lastErr != "" {
		body += "last reload failed: " + lastErr + "\n"
	}
	if !store.connected {
		body += "state store unreachable: " + store.lastError + "\n"
	}
	text(w, status, body)
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
