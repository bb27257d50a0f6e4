package server

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgectl/edgectl/pkg/edge"
)

// Access-log buffering: lines are appended to a buffer that a writer
// goroutine swaps out and writes when it holds accessLogBuffer bytes, at
// least every flushInterval, and on Close. Beyond accessLogMaxPending
// bytes waiting (a writer that cannot keep up), lines are dropped.
const (
	accessLogBuffer     = 64 << 10
	accessLogMaxPending = 4 << 20
	flushInterval       = time.Second
)

// accessLog writes one JSON line per request. The request path formats its
// line into the pending buffer under a mutex (no channel hop, no goroutine
// wake-up per request); the writes happen on the log's own goroutine, so a
// slow destination never slows a request down: when too much is pending, a
// line is dropped (and counted) instead.
type accessLog struct {
	w       io.Writer
	dropped func()
	flush   time.Duration // at least this often, pending lines are written
	kick    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	pending []byte
	spare   []byte
	closed  bool
	stamp   stampCache
}

func newAccessLog(w io.Writer, dropped func()) *accessLog {
	return newAccessLogFlushing(w, dropped, flushInterval)
}

// newAccessLogFlushing is newAccessLog writing pending lines at least
// every flush (tests shorten it).
func newAccessLogFlushing(w io.Writer, dropped func(), flush time.Duration) *accessLog {
	l := &accessLog{
		w: w, dropped: dropped, flush: flush,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		pending: make([]byte, 0, accessLogBuffer), spare: make([]byte, 0, accessLogBuffer),
	}
	go l.run()
	return l
}

func (l *accessLog) log(at time.Time, rec *edge.Record) {
	l.mu.Lock()
	if l.closed || len(l.pending) >= accessLogMaxPending {
		l.mu.Unlock()
		l.dropped()
		return
	}
	l.pending = appendAccessLine(l.pending, &l.stamp, at, rec)
	full := len(l.pending) >= accessLogBuffer
	l.mu.Unlock()
	if full {
		l.signal()
	}
}

func (l *accessLog) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *accessLog) run() {
	defer close(l.done)
	tick := time.NewTicker(l.flush)
	defer tick.Stop()
	for {
		select {
		case <-l.kick:
		case <-tick.C:
		}
		l.mu.Lock()
		b, closed := l.pending, l.closed
		l.pending, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		if len(b) > 0 {
			l.w.Write(b)
		}
		l.mu.Lock()
		if cap(b) > accessLogMaxPending {
			b = make([]byte, 0, accessLogBuffer) // do not keep a burst's buffer
		}
		l.spare = b[:0]
		l.mu.Unlock()
		if closed {
			return
		}
	}
}

// Close writes the pending lines; lines logged afterwards are dropped.
func (l *accessLog) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
	<-l.done
}

// stampCache keeps the formatted date and time of one second, so that
// lines of the same second format their timestamp without the time
// package's layout interpreter: only the milliseconds change.
type stampCache struct {
	sec    int64  // Unix seconds of prefix; 0 before the first line
	prefix []byte // "2006-01-02T15:04:05." of sec, in UTC
}

// append appends at in UTC as "2006-01-02T15:04:05.000Z" (the layout
// "2006-01-02T15:04:05.000Z07:00", which for UTC always ends in Z).
func (c *stampCache) append(b []byte, at time.Time) []byte {
	at = at.UTC()
	if sec := at.Unix(); sec != c.sec || c.prefix == nil {
		c.sec = sec
		c.prefix = at.Truncate(time.Second).AppendFormat(c.prefix[:0], "2006-01-02T15:04:05.")
	}
	b = append(b, c.prefix...)
	ms := at.Nanosecond() / 1e6
	return append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendAccessLine appends one JSON object and a newline, its
// timestamp's second taken from c when it is the same. Field order is
// fixed so that the log reads the same line after line.
func appendAccessLine(b []byte, c *stampCache, at time.Time, r *edge.Record) []byte {
	b = append(b, `{"time":"`...)
	b = c.append(b, at)
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
	if r.Limit != "" {
		b = appendStr(b, "limit", r.Limit)
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

// appendMillis appends d in milliseconds to the microsecond, as the
// shortest decimal: 1.5, 0.002, 12 (what strconv.AppendFloat of
// float64(µs)/1000 with 'f', -1 gives, formatted with integers).
func appendMillis(b []byte, key string, d time.Duration) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// jsonVerbatim holds the bytes encoding/json writes inside a string as
// they are: printable ASCII but the quote, the backslash and the three it
// escapes for HTML (<, >, &). A table: one load per byte of the line's
// strings instead of seven comparisons.
var jsonVerbatim = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\\<>&` {
		t[c] = false
	}
	return t
}()

// appendJSONString quotes s as a JSON string; plain ASCII is copied as is,
// anything else goes through encoding/json (which also replaces invalid
// UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonVerbatim[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
