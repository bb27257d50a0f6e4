package server

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgectl/edgectl/pkg/edge"
)

// Access-log buffering: lines wait in a channel and a bufio.Writer, and are
// flushed at least every flushInterval and on Close.
const (
	accessLogQueue  = 8192
	accessLogBuffer = 64 << 10
	flushInterval   = time.Second
)

// accessEntry is what the request path hands to the writer: a copy of the
// record, which the edge reuses once Observer.Request returns.
type accessEntry struct {
	at  time.Time
	rec edge.Record
}

// accessLog writes one JSON line per request from its own goroutine. When
// the queue is full a line is dropped (and counted) rather than slowing
// the request down.
type accessLog struct {
	ch      chan accessEntry
	w       *bufio.Writer
	dropped func()
	done    chan struct{}
	once    sync.Once
}

func newAccessLog(w io.Writer, dropped func()) *accessLog {
	l := &accessLog{ch: make(chan accessEntry, accessLogQueue), w: bufio.NewWriterSize(w, accessLogBuffer), dropped: dropped, done: make(chan struct{})}
	go l.run()
	return l
}

func (l *accessLog) log(at time.Time, rec *edge.Record) {
	select {
	case l.ch <- accessEntry{at: at, rec: *rec}:
	default:
		l.dropped()
	}
}

func (l *accessLog) run() {
	defer close(l.done)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	buf := make([]byte, 0, 1024)
	for {
		select {
		case e, ok := <-l.ch:
			if !ok {
				l.w.Flush()
				return
			}
			buf = appendAccessLine(buf[:0], &e)
			l.w.Write(buf)
		case <-tick.C:
			l.w.Flush()
		}
	}
}

// Close writes the queued lines and flushes them. Log calls must have
// stopped (the edge listener is shut down first).
func (l *accessLog) Close() {
	l.once.Do(func() { close(l.ch) })
	<-l.done
}

// appendAccessLine appends one JSON object and a newline. Field order is
// fixed so that the log reads the same line after line.
func appendAccessLine(b []byte, e *accessEntry) []byte {
	r := &e.rec
	b = append(b, `{"time":"`...)
	b = e.at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '"')
	b = appendStr(b, "domain", r.Domain)
	b = appendStr(b, "host", r.Host)
	b = appendStr(b, "method", r.Method)
	b = appendStr(b, "path", r.Path)
	b = appendInt(b, "status", int64(r.Status))
	b = appendInt(b, "bytes", r.Bytes)
	b = appendMillis(b, "duration_ms", r.Duration)
	b = appendStr(b, "verify", r.Verify)
	b = appendStr(b, "client_fingerprint", r.Fingerprint)
	b = appendStr(b, "firewall_rule", r.FirewallRule)
	b = appendStr(b, "firewall_action", r.FirewallAction)
	if r.UpstreamStatus != 0 {
		b = appendMillis(b, "upstream_ms", r.Upstream)
		b = appendInt(b, "upstream_status", int64(r.UpstreamStatus))
	}
	b = appendStr(b, "remote", r.Remote)
	if r.Error != "" {
		b = appendStr(b, "error", r.Error)
	}
	return append(b, "}\n"...)
}

func appendStr(b []byte, key, v string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return appendJSONString(b, v)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

func appendMillis(b []byte, key string, d time.Duration) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
}

// appendJSONString quotes s as a JSON string; plain ASCII is copied as is,
// anything else goes through encoding/json (which also replaces invalid
// UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
