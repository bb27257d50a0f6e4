package cli_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

// adminClient reads the admin endpoints of the nodes.
var adminClient = &http.Client{Timeout: 2 * time.Second}

// stateOf returns a node's /state.
func (p *serveProc) stateOf() (server.StateInfo, error) {
	var info server.StateInfo
	resp, err := adminClient.Get("http://" + p.admin + "/state")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("/state: %v: %s", err, body)
	}
	return info, nil
}

// waitNodes polls the /state of every node until cond holds for each, and
// returns, per node, the time from since to when it first did.
func waitNodes(t *testing.T, what string, nodes []*serveProc, since time.Time, limit time.Duration, cond func(server.StateInfo) bool) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(nodes))
	var wg sync.WaitGroup
	var failed atomic.Bool
	for i, p := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := since.Add(limit)
			for {
				info, err := p.stateOf()
				if err == nil && cond(info) {
					took[i] = time.Since(since)
					return
				}
				if time.Now().After(deadline) {
					failed.Store(true)
					t.Errorf("node %d: %s: not within %s (last /state: %+v, %v)", i, what, limit, info, err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}
	return took
}

func serialIs(serial int64) func(server.StateInfo) bool {
	return func(info server.StateInfo) bool { return info.Serial == serial }
}

func connectedIs(connected bool) func(server.StateInfo) bool {
	return func(info server.StateInfo) bool { return info.Store.Connected == connected }
}

// requestLoop sends requests to a node until stop is closed (at most
// 5000), alternately on a keep-alive connection and on new ones, and
// returns how many were sent and which failed.
func (e *serveEnv) requestLoop(p *serveProc, stop <-chan struct{}) (done <-chan struct{}, sent *int, failures *[]string) {
	clients := []*http.Client{e.client(p, true), e.client(p, false)}
	ch := make(chan struct{})
	n, failed := 0, []string{}
	go func() {
		defer close(ch)
		for ; n < 5000; n++ {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := clients[n%2].Get("https://api.bank.test/loop")
			if err != nil {
				failed = append(failed, err.Error())
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed = append(failed, resp.Status)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return ch, &n, &failed
}

// TestServeFleetEtcd runs three edgectl serve processes that follow one
// state in a real etcd: applies reach all of them, an etcd outage fails
// no request, and a node restarted while etcd is down starts from its
// state cache.
func TestServeFleetEtcd(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t, etcdtest.Options{})
	e := newServeEnv(t)
	e.state = etcd.Location("edgectl/fleet")
	e.apply(t)
	caches := make([]string, 3)
	nodes := make([]*serveProc, 3)
	for i := range nodes {
		caches[i] = filepath.Join(e.dir, fmt.Sprintf("node-%d", i), "state-cache.json")
		nodes[i] = e.serveWith(t, "", "--state-cache", caches[i])
	}
	waitNodes(t, "connected at serial 1", nodes, time.Now(), 5*time.Second, func(info server.StateInfo) bool {
		return info.Serial == 1 && info.Store == server.StoreInfo{Kind: "etcd", Connected: true, Revision: info.Store.Revision} && info.Store.Revision > 0
	})

	t.Run("an apply reaches every node within 2 seconds", func(t *testing.T) {
		for serial := int64(2); serial <= 4; serial++ {
			e.manifests(t, fmt.Sprintf("v%d", serial))
			start := time.Now()
			e.apply(t)
			applied := time.Since(start)
			took := waitNodes(t, fmt.Sprintf("serial %d", serial), nodes, start, 5*time.Second, serialIs(serial))
			all := slices.Max(took)
			t.Logf("serial %d: apply took %s; apply start to each node serving it: %v; to all nodes: %s (%s after the apply returned)",
				serial, applied.Round(time.Millisecond), roundAll(took), all.Round(time.Millisecond), (all - applied).Round(time.Millisecond))
			if all > 2*time.Second {
				t.Errorf("serial %d reached all nodes in %s, want within 2s", serial, all)
			}
		}
		resp, err := e.client(nodes[2], false).Get("https://api.bank.test/after")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Version"); v != "v4" {
			t.Errorf("node 2 answers with version %q, want v4", v)
		}
	})

	t.Run("an etcd outage fails no request and reloads resume", func(t *testing.T) {
		stop := make(chan struct{})
		done, sent, failures := e.requestLoop(nodes[0], stop)
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			<-done
		}()
		time.Sleep(100 * time.Millisecond)
		stopped := time.Now()
		etcd.Stop()
		took := waitNodes(t, "disconnected", nodes, stopped, 10*time.Second, connectedIs(false))
		t.Logf("etcd stopped: nodes noticed after %v", roundAll(took))
		info, _ := nodes[0].stateOf()
		if !strings.Contains(info.Store.LastError, "etcd") || info.Serial != 4 {
			t.Errorf("/state while etcd is down: %+v", info)
		}
		if code, body := nodes[0].get(t, "/readyz"); code != 200 || !strings.Contains(body, "state store unreachable") {
			t.Errorf("/readyz while etcd is down = %d %q", code, body)
		}
		if _, metrics := nodes[0].get(t, "/metrics"); !strings.Contains(metrics, "\nedgectl_state_store_connected 0\n") {
			t.Errorf("/metrics does not show the store disconnected")
		}
		time.Sleep(200 * time.Millisecond) // requests go on while etcd is down

		restarted := time.Now()
		etcd.Restart()
		took = waitNodes(t, "reconnected", nodes, restarted, 10*time.Second, connectedIs(true))
		t.Logf("etcd restarted: nodes reconnected after %v", roundAll(took))
		e.manifests(t, "v5")
		start := time.Now()
		e.apply(t)
		took = waitNodes(t, "serial 5", nodes, start, 5*time.Second, serialIs(5))
		t.Logf("serial 5 after the outage: apply start to each node: %v", roundAll(took))

		close(stop)
		<-done
		if len(*failures) > 0 {
			t.Errorf("%d of %d requests failed during the outage: %q", len(*failures), *sent, *failures)
		}
		if *sent < 100 {
			t.Errorf("only %d requests were sent", *sent)
		}
		t.Logf("%d requests during the outage, %d failed", *sent, len(*failures))
	})

	t.Run("a node restarted while etcd is down starts from its cache", func(t *testing.T) {
		etcd.Stop()
		if err := nodes[2].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-nodes[2].exited:
		case <-time.After(10 * time.Second):
			t.Fatal("node 2 did not stop")
		}
		p := e.serveWith(t, "", "--state-cache", caches[2])
		if log := p.stderr.String(); !strings.Contains(log, "(serial 5 from the state cache "+caches[2]) || !strings.Contains(log, "starting from the state cache") {
			t.Errorf("the start from the cache is not said:\n%s", log)
		}
		if info, err := p.stateOf(); err != nil || info.Serial != 5 || info.Store.Connected {
			t.Errorf("/state of the node started from the cache: %+v %v", info, err)
		}
		if code, _ := p.get(t, "/readyz"); code != 200 {
			t.Errorf("/readyz = %d, want 200", code)
		}
		resp, err := e.client(p, false).Get("https://api.bank.test/cached")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Version") != "v5" {
			t.Errorf("from the cache: %s, version %q", resp.Status, resp.Header.Get("Version"))
		}

		// Without a cache the node cannot start, and says why.
		cmd := exec.Command("edgectl", "serve", "--state", e.state, "--listen", "127.0.0.1:0", "--admin", "")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("serve without a cache while etcd is down: %v, want exit 1\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), "edgectl: cannot serve the state "+e.state+": reading state: cannot reach etcd at "+etcd.Endpoint+": ") ||
			!strings.HasSuffix(string(out), "; and there is no state cache to start from (--state-cache)\n") {
			t.Errorf("serve without a cache while etcd is down says:\n%s", out)
		}

		// etcd comes back: the node started from the cache follows it.
		etcd.Restart()
		fleet := []*serveProc{nodes[0], nodes[1], p}
		waitNodes(t, "reconnected", fleet, time.Now(), 10*time.Second, connectedIs(true))
		e.manifests(t, "v6")
		start := time.Now()
		e.apply(t)
		took := waitNodes(t, "serial 6", fleet, start, 5*time.Second, serialIs(6))
		t.Logf("serial 6 after restarting etcd: apply start to each node: %v", roundAll(took))
	})
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
