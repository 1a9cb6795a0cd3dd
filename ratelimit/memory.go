package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryConfig configures [NewMemory]. The zero value is ready to use.
type MemoryConfig struct {
	// Shards is the number of independently locked partitions of the key
	// space, rounded up to a power of two. Zero means the larger of 64 and
	// 4*GOMAXPROCS, rounded up to a power of two.
	Shards int
	// IdleTTL is how long a key may go unused before the sweeper forgets
	// it. A forgotten key starts again with a full bucket, so IdleTTL
	// should be at least the longest Period of the limits in use. Zero
	// means 10 minutes.
	IdleTTL time.Duration
	// SweepInterval is how often the background sweeper runs [Memory.Sweep].
	// Zero means IdleTTL/2; a negative value disables the background
	// sweeper (call Sweep yourself).
	SweepInterval time.Duration
	// MaxKeys, when positive, caps the number of tracked keys. The cap is
	// enforced per shard (MaxKeys/Shards, rounded up, each): inserting a
	// key into a full shard forgets that shard's least recently used key,
	// which then starts again with a full bucket. Zero means no cap: memory
	// is then bounded by the number of keys seen within IdleTTL.
	MaxKeys int
	// Now returns the current time. Nil means time.Now. Tests move a clock.
	Now func() time.Time
}

// Memory is an in-process [Limiter]: one golang.org/x/time/rate token
// bucket per key, in a sharded map whose idle keys are evicted. It suits a
// single replica; several replicas need a shared limiter such as the one in
// package redislimit.
//
// Allow on a key already tracked takes one shard lock, one map lookup and
// the rate.Limiter's own lock, and does not allocate. A tracked key costs
// about 240 bytes of heap (the bucket, the map slot, the list links and a
// copy of the key); keys unused for IdleTTL are swept and their memory,
// including the map's, is given back.
//
// A Memory is safe for concurrent use. Call [Memory.Close] to stop its
// sweeper.
type Memory struct {
	shards    []shard
	mask      uint64
	seed      maphash.Seed
	idleTTL   time.Duration
	perShard  int
	now       func() time.Time
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ Limiter = (*Memory)(nil)

// shard is one partition: a map for lookup and an intrusive list in order of
// last use (front: most recent) for eviction.
type shard struct {
	mu   sync.Mutex
	m    map[string]*entry
	head *entry // most recently used
	tail *entry // least recently used
	peak int    // largest len(m) since the map was last rebuilt
	_    [64]byte
}

type entry struct {
	key        string
	lim        *rate.Limiter
	limit      Limit
	seen       int64 // unix nanoseconds of the last use
	prev, next *entry
}

// NewMemory returns an in-memory limiter configured by c. Unless
// c.SweepInterval is negative it starts a goroutine that evicts idle keys
// until [Memory.Close] is called.
func NewMemory(c MemoryConfig) *Memory {
	n := c.Shards
	if n <= 0 {
		n = max(64, 4*runtime.GOMAXPROCS(0))
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	if c.IdleTTL <= 0 {
		c.IdleTTL = 10 * time.Minute
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = c.IdleTTL / 2
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	m := &Memory{
		shards:  make([]shard, n),
		mask:    uint64(n - 1),
		seed:    maphash.MakeSeed(),
		idleTTL: c.IdleTTL,
		now:     c.Now,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if c.MaxKeys > 0 {
		m.perShard = (c.MaxKeys + n - 1) / n
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]*entry)
	}
	if c.SweepInterval > 0 {
		go m.sweeper(c.SweepInterval)
	} else {
		close(m.done)
	}
	return m
}

// Allow implements [Limiter]. It returns an error only for a limit or cost
// that [Limit.Validate] rejects. It does not allocate for a key it already
// tracks.
func (m *Memory) Allow(_ context.Context, key string, limit Limit, cost int) (Result, error) {
	if err := limit.Validate(cost); err != nil {
		return Result{}, err
	}
	now := m.now()
	nanos := now.UnixNano()
	s := &m.shards[maphash.String(m.seed, key)&m.mask]

	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = s.insert(key, limit, m.perShard)
	} else {
		if e.limit != limit {
			e.lim.SetLimitAt(now, rate.Limit(limit.Rate()))
			e.lim.SetBurstAt(now, limit.BurstOrCount())
			e.limit = limit
		}
		s.touch(e)
	}
	e.seen = nanos
	ok := e.lim.AllowN(now, cost)
	tokens := e.lim.TokensAt(now)
	s.mu.Unlock()

	return result(limit, ok, tokens, cost), nil
}

// result builds the Result of a token-bucket decision from the tokens left.
func result(limit Limit, ok bool, tokens float64, cost int) Result {
	r := limit.Rate()
	burst := float64(limit.BurstOrCount())
	res := Result{Allowed: ok, Limit: limit}
	// Tokens come from float arithmetic on durations; absorb the noise so
	// that 2.9999999999 left counts as 3.
	if rem := math.Floor(tokens + 1e-9); rem > 0 {
		res.Remaining = int(rem)
	}
	res.ResetAfter = secondsToDuration((burst - tokens) / r)
	if !ok {
		res.RetryAfter = secondsToDuration((float64(cost) - tokens) / r)
	}
	return res
}

func secondsToDuration(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(math.Round(s * 1e9))
}

// insert adds a new entry for key at the front of the list, first evicting
// the least recently used entry when the shard is at its cap. s.mu is held.
func (s *shard) insert(key string, limit Limit, capacity int) *entry {
	if capacity > 0 && len(s.m) >= capacity && s.tail != nil {
		s.remove(s.tail)
	}
	lim := rate.NewLimiter(rate.Limit(limit.Rate()), limit.BurstOrCount()) // full
	// Clone: the map must not pin a larger buffer the key may point into.
	e := &entry{key: strings.Clone(key), lim: lim, limit: limit}
	s.m[e.key] = e
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
	if len(s.m) > s.peak {
		s.peak = len(s.m)
	}
	return e
}

// touch moves e to the front of the list. s.mu is held.
func (s *shard) touch(e *entry) {
	if s.head == e {
		return
	}
	// Unlink (e is not the head, so e.prev is set).
	e.prev.next = e.next
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev = nil
	e.next = s.head
	s.head.prev = e
	s.head = e
}

// remove forgets e. s.mu is held.
func (s *shard) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(s.m, e.key)
}

// Sweep forgets every key unused for longer than IdleTTL and returns how many
// it forgot. The background sweeper calls it; it is exported for callers who
// disabled that sweeper and for tests that move the clock.
//
// Go maps do not give memory back when entries are deleted, so a shard whose
// map has shrunk to under a quarter of its peak is copied into a new map.
func (m *Memory) Sweep() int {
	cutoff := m.now().Add(-m.idleTTL).UnixNano()
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for s.tail != nil && s.tail.seen < cutoff {
			s.remove(s.tail)
			n++
		}
		if s.peak >= 64 && len(s.m) < s.peak/4 {
			fresh := make(map[string]*entry, len(s.m))
			for e := s.head; e != nil; e = e.next {
				fresh[e.key] = e
			}
			s.m = fresh
			s.peak = len(fresh)
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of keys tracked now.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Close stops the background sweeper and waits for it to return. The limiter
// still answers Allow afterwards, but idle keys are no longer evicted. Close
// is safe to call more than once.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

func (m *Memory) sweeper(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}
