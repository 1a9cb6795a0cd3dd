package server

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// connCacheTTL is how long a receiver keeps a connection it has read: a
// rotated secret or a deleted connection takes effect on other replicas
// within it (at once on the replica that made the change).
const connCacheTTL = 5 * time.Second

// connCacheSize bounds the cached connections; past it the cache is
// emptied and refilled by the next requests.
const connCacheSize = 10000

// connCache keeps the integration connections that webhook receivers read
// for every request, so that the usual cost of finding a request's secrets
// is a map read instead of a transaction.
type connCache struct {
	mu      sync.RWMutex
	entries map[connCacheKey]connCacheEntry
}

type connCacheKey struct {
	provider string
	id       uuid.UUID
}

type connCacheEntry struct {
	c       *IntegrationConnection
	expires time.Time
}

func (cc *connCache) get(provider string, id uuid.UUID, now time.Time) (*IntegrationConnection, bool) {
	cc.mu.RLock()
	e, ok := cc.entries[connCacheKey{provider, id}]
	cc.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.c, true
}

func (cc *connCache) put(c *IntegrationConnection, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.entries == nil || len(cc.entries) >= connCacheSize {
		cc.entries = make(map[connCacheKey]connCacheEntry)
	}
	cc.entries[connCacheKey{c.Provider, c.ID}] = connCacheEntry{c: c, expires: now.Add(connCacheTTL)}
}

// forget drops connection id, after its secrets changed or it was deleted.
func (cc *connCache) forget(id uuid.UUID) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for k := range cc.entries {
		if k.id == id {
			delete(cc.entries, k)
		}
	}
}
