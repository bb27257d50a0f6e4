package rules

import (
	"math"
	"net/netip"
	"sync"
)

const (
	limiterShards    = 16
	maxBucketsPerShd = 4096
)

// limiter is a token bucket, global or per client: per IPv4 address or per
// IPv6 /64 (one subscriber's allocation, so that rotating addresses inside
// it does not escape the limit).
type limiter struct {
	rate   float64 // tokens per second
	burst  float64
	global bool

	mu     sync.Mutex
	bucket bucket
	shards [limiterShards]limShard
}

type limShard struct {
	mu sync.Mutex
	m  map[netip.Addr]bucket
}

type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

func newLimiter(rate, burst float64, global bool) *limiter {
	l := &limiter{rate: rate, burst: burst, global: global}
	l.bucket = bucket{tokens: burst, last: math.MinInt64}
	for i := range l.shards {
		l.shards[i].m = map[netip.Addr]bucket{}
	}
	return l
}

// take refills b to now and takes a token; wait is the seconds until the
// next token when none is left.
func (l *limiter) take(b *bucket, now int64) (ok bool, wait float64) {
	if b.last == math.MinInt64 {
		b.tokens = l.burst
	} else if now > b.last {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)/1e9*l.rate)
	}
	if now > b.last {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, (1 - b.tokens) / l.rate
}

// full reports whether b has refilled completely by now.
func (l *limiter) full(b bucket, now int64) bool {
	return b.tokens+float64(now-b.last)/1e9*l.rate >= l.burst
}

func (l *limiter) allow(addr netip.Addr, now int64) (bool, float64) {
	if l.global {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.take(&l.bucket, now)
	}
	key := addr.Unmap().WithZone("")
	if key.Is6() {
		p, _ := key.Prefix(64)
		key = p.Addr()
	}
	b16 := key.As16()
	h := uint32(2166136261)
	for _, c := range b16 {
		h = (h ^ uint32(c)) * 16777619
	}
	s := &l.shards[h%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, found := s.m[key]
	if !found {
		b.last = math.MinInt64
		if len(s.m) >= maxBucketsPerShd {
			s.evict(l, now)
		}
	}
	ok, wait := l.take(&b, now)
	s.m[key] = b
	return ok, wait
}

// evict removes the buckets that have refilled (forgetting them changes
// nothing); if every bucket is still draining, it removes arbitrary ones so
// that memory stays bounded.
func (s *limShard) evict(l *limiter, now int64) {
	for k, b := range s.m {
		if l.full(b, now) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < maxBucketsPerShd*3/4 {
			break
		}
		delete(s.m, k)
	}
}
