package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Idle modes: what an idle keep-alive connection costs the server.
//
//	idle     -c mTLS connections, each sends one HTTP/1.1 request, reads its
//	         response and stays open without another;
//	idle-h2  the same over HTTP/2: one stream per connection, then none.
//
// With -watch name=PID it reports, per connection that got its response, the
// growth of the resident set of that process group (the sum of its
// processes' RSS, /proc/PID/statm) from before the first connection to -d
// after the last response: rss_per_conn_b, in bytes. The connections are
// opened 16 at a time and closed at the end.

func idleMode(m string) bool { return m == "idle" || m == "idle-h2" }

// idleConn is one held connection: its TLS connection (idle) or its
// HTTP/2 transport (idle-h2).
type idleConn struct {
	tc *tls.Conn
	tr *http.Transport
}

func (c idleConn) close() {
	if c.tc != nil {
		c.tc.Close()
	}
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

// open makes one connection, sends its request and checks the response.
func (g *gen) openIdle() (idleConn, string, error) {
	deadline := time.Now().Add(*fTimeout)
	if *fMode == "idle-h2" {
		tr := g.h2Transport()
		kind, err, _, _ := g.h2RoundTrip(tr, deadline)
		if kind != "" {
			tr.CloseIdleConnections()
			return idleConn{}, kind, err
		}
		return idleConn{tr: tr}, "", nil
	}
	tc, kind, err := g.dial(deadline)
	if err != nil {
		return idleConn{}, kind, err
	}
	kind, _, err, _, _ = g.roundTrip(tc, bufio.NewReader(tc), g.reqKeep, deadline)
	if kind != "" {
		tc.Close()
		return idleConn{}, kind, err
	}
	tc.SetDeadline(time.Time{})
	return idleConn{tc: tc}, "", nil
}

func (g *gen) runIdle() {
	ws := watches()
	before := make([]int64, len(ws))
	for i, w := range ws {
		before[i] = groupRSS(w.pid)
	}
	g.t1, g.t2 = time.Now(), time.Now().Add(time.Hour) // every request counts
	conns := make([]idleConn, *fConc)
	errs := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, kind, err := g.openIdle()
				mu.Lock()
				if kind != "" {
					errs[kind]++
					g.noteErr(kind, err)
				}
				conns[i] = c
				mu.Unlock()
			}
		}()
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	var ok int64
	for _, c := range conns {
		if c.tc != nil || c.tr != nil {
			ok++
		}
	}
	time.Sleep(*fDur) // idle: servers settle (buffers given back, stacks shrunk)
	sum := summary{Label: *fLabel, Mode: *fMode, URL: *fURL, Addr: g.addr, Concurrency: *fConc,
		DurationS: fDur.Seconds(), TLS: g.connInfo, OK: ok, Errors: map[string]int64{}, FirstErrors: g.firstErr,
		LatencyMS: map[string]float64{}, CPU: map[string]float64{}, OKPerCPUSec: map[string]float64{},
		RSSPerConn: map[string]float64{}, GOMAXPROCS: runtimeProcs()}
	for k, v := range errs {
		sum.addErrors(k, v)
	}
	for i, w := range ws {
		if after := groupRSS(w.pid); ok > 0 {
			sum.RSSPerConn[w.name] = float64((after - before[i]) / ok)
		}
	}
	for _, c := range conns {
		c.close()
	}
	sum.Meta = metas()
	if *fJSON {
		b, _ := json.Marshal(sum)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("%s %s c=%d held %v -> %s\n", sum.Mode, g.addr, sum.Concurrency, *fDur, sum.TLS)
	fmt.Printf("  connections with a response: %d  errors: %v\n", ok, errs)
	fmt.Printf("  resident set growth per connection, bytes: %v\n", sum.RSSPerConn)
}

// groupRSS sums the resident set, in bytes, of every process whose pid or
// process group is pgid.
func groupRSS(pgid int) int64 {
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	var tot int64
	page := int64(os.Getpagesize())
	for _, e := range ents {
		pid, pg, ok := statPGID(e)
		if !ok || (pg != pgid && pid != pgid) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(e), "statm"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		tot += n * page
	}
	return tot
}
