package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeReapply50 is the reload target of issue 6: a running "edgectl
// serve" answers every request of a load loop while the state is re-applied
// 50 times, alternating two manifests that differ in a response header.
// Four workers send requests: two on keep-alive connections, two with a new
// connection (a full mTLS handshake) per request.
func TestServeReapply50(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("50 applies under load: skipped with -short")
	}
	const (
		applies = 50
		workers = 4
		budget  = 30 * time.Second
	)
	e := newServeEnv(t)
	e.manifests(t, "A")
	e.apply(t)
	p := e.serve(t)
	p.waitFor(t, "serial 1", "/readyz", "serving serial 1")
	_, metrics := p.get(t, "/metrics")
	reloadsBefore := reloads(metrics)

	var (
		mu       sync.Mutex
		failures []string
		seen     = map[string]int{}
		sent     atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(budget)
	for w := range workers {
		client := e.client(p, w < 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(deadline) {
				sent.Add(1)
				resp, err := client.Get(fmt.Sprintf("https://api.bank.test/load/%d", w))
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode != http.StatusOK {
					failures = append(failures, fmt.Sprintf("worker %d: %s", w, resp.Status))
				}
				seen[resp.Header.Get("Version")]++
				mu.Unlock()
			}
		}()
	}

	start := time.Now()
	done := 0
	for i := 1; i <= applies && time.Now().Before(deadline); i++ {
		version := "B"
		if i%2 == 0 {
			version = "A"
		}
		e.manifests(t, version)
		e.apply(t)
		// Each apply must be served before the next, so no reload is
		// coalesced with another.
		p.waitFor(t, fmt.Sprintf("serial %d", i+1), "/readyz", fmt.Sprintf("serving serial %d\n", i+1))
		done++
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()

	_, metrics = p.get(t, "/metrics")
	mu.Lock()
	defer mu.Unlock()
	versions := make([]string, 0, len(seen))
	for v, n := range seen {
		versions = append(versions, fmt.Sprintf("%s=%d", v, n))
	}
	sort.Strings(versions)
	t.Logf("%d applies in %v (%d successful reloads); %d requests by %d workers (%.0f req/s), %d failed; versions that answered: %v",
		done, elapsed.Round(time.Millisecond), reloads(metrics)-reloadsBefore, sent.Load(), workers,
		float64(sent.Load())/elapsed.Seconds(), len(failures), versions)
	if done < applies {
		t.Errorf("only %d of %d applies within %v", done, applies, budget)
	}
	if len(failures) > 0 {
		n := min(len(failures), 10)
		t.Errorf("%d of %d requests failed during the applies; first %d: %q", len(failures), sent.Load(), n, failures[:n])
	}
	if seen["A"] == 0 || seen["B"] == 0 {
		t.Errorf("both manifests should have answered requests: %v", versions)
	}
}
