// report: turns the loadgen JSON lines written by run.sh into a table, a JSON file and a
// Markdown table in the layout of docs/PERFORMANCE.md.
//
//	report [-json-out results.json] [-md-out table.md] results.jsonl...
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

type run struct {
	Mode         string             `json:"mode"`
	Concurrency  int                `json:"concurrency"`
	DurationS    float64            `json:"duration_s"`
	TLS          string             `json:"tls"`
	OK           int64              `json:"ok"`
	RPS          float64            `json:"rps"`
	Handshakes   int64              `json:"handshakes"`
	HPS          float64            `json:"handshakes_per_s"`
	LatencyMS    map[string]float64 `json:"latency_ms"`
	Errors       map[string]int64   `json:"errors"`
	ErrHandshake int64              `json:"err_handshake"`
	ErrHTTP      int64              `json:"err_http"`
	ErrOther     int64              `json:"err_other"`
	CPU          map[string]float64 `json:"cpu_pct"`
	OKPerCPUSec  map[string]float64 `json:"ok_per_cpu_s"`
	Origin       map[string]int64   `json:"origin"`
	RSSPerConn   map[string]float64 `json:"rss_per_conn_b"`
	Meta         map[string]string  `json:"meta"`
}

type group struct {
	key  [3]string
	runs []run
}

func main() {
	jsonOut := flag.String("json-out", "", "also write all runs plus per-point aggregates here")
	mdOut := flag.String("md-out", "", "also write the Markdown table (one per key algorithm) here")
	flag.Parse()
	var all []run
	var raw []json.RawMessage
	for _, f := range flag.Args() {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var r run
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				fmt.Fprintf(os.Stderr, "skip bad line: %v\n", err)
				continue
			}
			all = append(all, r)
			raw = append(raw, json.RawMessage(line))
		}
		fh.Close()
	}
	order := map[string]int{}
	idx := map[[3]string]*group{}
	var groups []*group
	for _, r := range all {
		k := [3]string{r.Meta["target"], r.Meta["alg"], r.Mode}
		g := idx[k]
		if g == nil {
			g = &group{key: k}
			idx[k] = g
			groups = append(groups, g)
			if _, ok := order[k[0]]; !ok {
				order[k[0]] = len(order)
			}
		}
		g.runs = append(g.runs, r)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].key, groups[j].key
		if a[0] != b[0] {
			return order[a[0]] < order[b[0]]
		}
		if ra, rb := modeRank(a[2]), modeRank(b[2]); ra != rb {
			return ra < rb
		}
		if a[2] != b[2] {
			return a[2] < b[2]
		}
		return a[1] < b[1]
	})
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\talg\tmode\treq/s (each run)\tp50 ms\tp99 ms\terrors hs/http/other\tsrv cpu%\tlg cpu%\treq per srv-cpu-s\thandshakes/run\tupstream conns\tidle KB/conn\ttls")
	var aggs []agg
	for _, g := range groups {
		sort.SliceStable(g.runs, func(i, j int) bool { return atoi(g.runs[i].Meta["rep"]) < atoi(g.runs[j].Meta["rep"]) })
		a := agg{Target: g.key[0], Alg: g.key[1], Mode: g.key[2]}
		var hs, up []string
		var eh, ehttp, eo int64
		tlsInfo := ""
		for _, r := range g.runs {
			a.RPS = append(a.RPS, r.RPS)
			a.P50 = append(a.P50, r.LatencyMS["p50"])
			a.P99 = append(a.P99, r.LatencyMS["p99"])
			a.SrvCPU = append(a.SrvCPU, r.CPU["server"])
			a.LGCPU = append(a.LGCPU, r.CPU["loadgen"])
			a.PerCPU = append(a.PerCPU, r.OKPerCPUSec["server"])
			if v, ok := r.RSSPerConn["server"]; ok {
				a.IdleKB = append(a.IdleKB, v/1000)
			}
			eh, ehttp, eo = eh+r.ErrHandshake, ehttp+r.ErrHTTP, eo+r.ErrOther
			hs = append(hs, strconv.FormatInt(r.Handshakes, 10))
			if r.Origin != nil {
				up = append(up, strconv.FormatInt(r.Origin["conns_opened"], 10))
			}
			if r.TLS != "" {
				f := strings.Fields(r.TLS) // TLS 1.3 TLS_AES_128_GCM_SHA256 curve=X25519 alpn="h2"
				tlsInfo = f[0] + " " + f[1] + " " + f[2]
				if len(f) > 4 {
					tlsInfo += " " + strings.ReplaceAll(f[4], `"`, "") // alpn=h2 / alpn=http/1.1
				}
			}
		}
		a.Errors = eh + ehttp + eo
		aggs = append(aggs, a)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			a.Target, a.Alg, a.Mode, join(a.RPS, "%.0f"), join(a.P50, "%.2f"), join(a.P99, "%.2f"),
			eh, ehttp, eo, join(a.SrvCPU, "%.0f"), join(a.LGCPU, "%.0f"), join(a.PerCPU, "%.0f"),
			strings.Join(hs, " / "), strings.Join(up, " / "), join(a.IdleKB, "%.1f"), tlsInfo)
	}
	tw.Flush()
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(markdown(aggs)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"runs": raw, "points": aggs}, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// agg is one point of the matrix (target, key algorithm, mode) over its repetitions.
type agg struct {
	Target, Alg, Mode string
	RPS, P50, P99     []float64
	SrvCPU, LGCPU     []float64
	PerCPU            []float64
	IdleKB            []float64 // idle modes: the server's resident set growth per connection, KB
	Errors            int64
}

// markdown renders one table per key algorithm: a row per target, for each mode its rate,
// p99 latency and (for keep-alive modes) requests per server CPU-second, or (for the idle
// modes) the server's resident set growth per idle connection, each run's value separated
// by " / ". edgectl's row is bold.
func markdown(aggs []agg) string {
	var b strings.Builder
	var algs, targets, modes []string
	add := func(list *[]string, v string) {
		for _, x := range *list {
			if x == v {
				return
			}
		}
		*list = append(*list, v)
	}
	point := map[[3]string]agg{}
	for _, a := range aggs {
		add(&algs, a.Alg)
		add(&targets, a.Target)
		add(&modes, a.Mode)
		point[[3]string{a.Target, a.Alg, a.Mode}] = a
	}
	sort.SliceStable(modes, func(i, j int) bool { return modeRank(modes[i]) < modeRank(modes[j]) })
	label := map[string]string{"handshake": "handshake", "keepalive": "keep-alive", "h2": "h2", "idle": "idle HTTP/1.1", "idle-h2": "idle h2"}
	for _, alg := range algs {
		fmt.Fprintf(&b, "### %s\n\n| target |", alg)
		var cols int
		for _, m := range modes {
			l := label[m]
			if l == "" {
				l = m
			}
			switch {
			case idleMode(m):
				fmt.Fprintf(&b, " %s KB per connection |", l)
				cols++
			case m == "handshake":
				fmt.Fprintf(&b, " %s hs/s | %s p99 ms |", l, l)
				cols += 2
			default:
				fmt.Fprintf(&b, " %s req/s | %s p99 ms | %s req per server CPU-s |", l, l, l)
				cols += 3
			}
		}
		b.WriteString(" errors |\n|" + strings.Repeat(" --- |", cols+2) + "\n")
		for _, t := range targets {
			cells := []string{t}
			var errs int64
			any := false
			for _, m := range modes {
				a, ok := point[[3]string{t, alg, m}]
				n := 3
				switch {
				case idleMode(m):
					n = 1
				case m == "handshake":
					n = 2
				}
				if !ok {
					for i := 0; i < n; i++ {
						cells = append(cells, "–")
					}
					continue
				}
				any = true
				errs += a.Errors
				if n == 1 {
					cells = append(cells, join(a.IdleKB, "%.1f"))
					continue
				}
				cells = append(cells, join(a.RPS, "%.0f"), join(a.P99, "%.2f"))
				if n == 3 {
					cells = append(cells, join(a.PerCPU, "%.0f"))
				}
			}
			if !any {
				continue
			}
			cells = append(cells, strconv.FormatInt(errs, 10))
			if t == "edgectl" {
				for i, c := range cells {
					cells[i] = "**" + c + "**"
				}
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// modeRank orders the rows of a target: handshake, keepalive, h2, idle, idle-h2, then
// other modes by name.
func modeRank(m string) int {
	if r, ok := map[string]int{"handshake": 0, "keepalive": 1, "h2": 2, "idle": 3, "idle-h2": 4}[m]; ok {
		return r
	}
	return 5
}

func idleMode(m string) bool { return m == "idle" || m == "idle-h2" }

func join(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(s, " / ")
}
