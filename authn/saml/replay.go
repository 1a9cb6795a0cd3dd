package saml

import (
	"sync"
	"time"
)

// ReplayCache records the IDs of accepted assertions so that each is
// accepted once. Consume records id until expiresAt and returns an error
// wrapping [ErrReplayed] if id is already recorded; any other error refuses
// the assertion too. Implementations must be safe for concurrent use; share
// one between every server that accepts assertions for the same IdPs.
type ReplayCache interface {
	Consume(id string, expiresAt time.Time) error
}

// MemoryReplayCache is a [ReplayCache] for one process. Expired IDs are
// dropped as new ones arrive, so its size is bounded by the number of
// assertions accepted within an assertion's lifetime.
type MemoryReplayCache struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	seen     map[string]time.Time
	nextScan int
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// Consume implements [ReplayCache].
func (c *MemoryReplayCache) Consume(id string, expiresAt time.Time) error {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if exp, ok := c.seen[id]; ok && now.Before(exp) {
		return ErrReplayed
	}
	if len(c.seen) >= c.nextScan {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		c.nextScan = max(2*len(c.seen), 1024)
	}
	c.seen[id] = expiresAt
	return nil
}
