package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport runs the report on two repetitions of two targets and checks
// the JSON and the Markdown table it writes.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.jsonl")
	lines := []string{
		`{"mode":"handshake","rps":850,"latency_ms":{"p50":30,"p99":60.7},"ok_per_cpu_s":{"server":900},"meta":{"target":"edgectl","alg":"ecdsa","rep":"1"}}`,
		`{"mode":"keepalive","rps":8430,"latency_ms":{"p50":3,"p99":10.79},"ok_per_cpu_s":{"server":9917},"meta":{"target":"edgectl","alg":"ecdsa","rep":"1"}}`,
		`{"mode":"keepalive","rps":7667,"latency_ms":{"p50":3,"p99":10.94},"ok_per_cpu_s":{"server":9105},"err_http":2,"meta":{"target":"edgectl","alg":"ecdsa","rep":"2"}}`,
		`{"mode":"keepalive","rps":8282,"latency_ms":{"p50":3,"p99":10.98},"ok_per_cpu_s":{"server":10483},"meta":{"target":"nginx","alg":"ecdsa","rep":"1"}}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonOut, mdOut := filepath.Join(dir, "results.json"), filepath.Join(dir, "table.md")
	cmd := exec.Command("go", "run", ".", "-json-out", jsonOut, "-md-out", mdOut, in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "8430 / 7667") {
		t.Errorf("text table lacks the runs of a point:\n%s", out)
	}
	md, err := os.ReadFile(mdOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"### ecdsa\n",
		"| target | handshake hs/s | handshake p99 ms | keep-alive req/s | keep-alive p99 ms | keep-alive req per server CPU-s | errors |\n",
		"| **edgectl** | **850** | **60.70** | **8430 / 7667** | **10.79 / 10.94** | **9917 / 9105** | **2** |\n",
		"| nginx | – | – | 8282 | 10.98 | 10483 | 0 |\n",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("table.md lacks %q:\n%s", want, md)
		}
	}
	js, err := os.ReadFile(jsonOut)
	if err != nil || !strings.Contains(string(js), `"points"`) || !strings.Contains(string(js), `"runs"`) {
		t.Errorf("results.json: %v\n%s", err, js)
	}
}

// TestReportIdle: the idle modes' column is the server's resident set
// growth per connection, in KB.
func TestReportIdle(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.jsonl")
	lines := []string{
		`{"mode":"idle","ok":2000,"rss_per_conn_b":{"server":23040},"meta":{"target":"edgectl","alg":"ecdsa","rep":"1"}}`,
		`{"mode":"idle-h2","ok":2000,"rss_per_conn_b":{"server":22528},"meta":{"target":"edgectl","alg":"ecdsa","rep":"1"}}`,
		`{"mode":"idle","ok":2000,"rss_per_conn_b":{"server":25700},"err_other":1,"meta":{"target":"nginx","alg":"ecdsa","rep":"1"}}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mdOut := filepath.Join(dir, "table.md")
	out, err := exec.Command("go", "run", ".", "-md-out", mdOut, in).CombinedOutput()
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	md, err := os.ReadFile(mdOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| target | idle HTTP/1.1 KB per connection | idle h2 KB per connection | errors |\n",
		"| **edgectl** | **23.0** | **22.5** | **0** |\n",
		"| nginx | 25.7 | – | 1 |\n",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("table.md lacks %q:\n%s", want, md)
		}
	}
}
