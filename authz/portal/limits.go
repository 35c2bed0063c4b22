package portal

import (
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound how often sign-up, login and reset may be tried: per
// client address and per email, each a token bucket (a burst, refilled
// at Every).
type Limits struct {
	Burst int
	Every time.Duration
}

// DefaultLimits: 10 attempts at once, then one a minute.
var DefaultLimits = Limits{Burst: 10, Every: time.Minute}

func (l Limits) orDefault() Limits {
	if l.Burst <= 0 || l.Every <= 0 {
		return DefaultLimits
	}
	return l
}

// limiter keeps a token bucket per key ("login ip 192.0.2.1", "reset
// email ada@…"). It lives in the process: behind a load balancer each
// server limits on its own, which bounds an attacker to n times the
// limit.
type limiter struct {
	mu      sync.Mutex
	l       Limits
	buckets map[string]*bucket
	pruned  time.Time // when prune last ran
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds the limiter's memory. When every bucket is in use, a
// key without one is refused until idle ones are forgotten: under a flood
// of new clients the limiter fails closed rather than grow.
const maxBuckets = 100000

func newLimiter(l Limits) *limiter { return &limiter{l: l, buckets: map[string]*bucket{}} }

// allow takes one attempt from each key's bucket, in order, and reports
// whether all of them had one. The first key refused ends it: later keys
// are neither charged nor given a bucket, so that a client refused by its
// address's bucket cannot fill the limiter with one bucket per email it
// names.
func (lm *limiter) allow(now time.Time, keys ...string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for _, k := range keys {
		b := lm.buckets[k]
		if b == nil {
			if len(lm.buckets) >= maxBuckets && now.Sub(lm.pruned) >= time.Second {
				lm.prune(now) // at most once a second: it reads every bucket
				lm.pruned = now
			}
			if len(lm.buckets) >= maxBuckets {
				return false
			}
			b = &bucket{lim: rate.NewLimiter(rate.Every(lm.l.Every), lm.l.Burst)}
			lm.buckets[k] = b
		}
		b.seen = now
		if !b.lim.AllowN(now, 1) {
			return false
		}
	}
	return true
}

// prune forgets buckets idle long enough to be full again.
func (lm *limiter) prune(now time.Time) {
	full := lm.l.Every * time.Duration(lm.l.Burst)
	for k, b := range lm.buckets {
		if now.Sub(b.seen) > full {
			delete(lm.buckets, k)
		}
	}
}

// sortBy sorts s by less, stably.
func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
