package tenancy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// Lookup finds a tenant by key (id or slug) for [Middleware].
//
// LookupTenant returns an error wrapping [ErrTenantNotFound] when no tenant
// has the key. Implementations are safe for concurrent use and must not return
// a tenant that the caller may see modified later.
type Lookup interface {
	LookupTenant(ctx context.Context, key string) (*Tenant, error)
}

// Cache defaults.
const (
	DefaultCacheTTL  = 5 * time.Second
	DefaultCacheSize = 10000
)

// CachedLookup is a [Lookup] over a [Store] that keeps answers, found or not
// found, for a short time, so that the usual per-request cost is a map read.
// A suspended tenant is therefore refused, and a new one found, within TTL.
// Set DB; the other fields have working zero values. It is safe for
// concurrent use; do not change its fields after the first lookup.
type CachedLookup struct {
	// DB is the database the tenants table is read from.
	DB bun.IDB
	// Store reads the tenants; nil means a zero [Store].
	Store *Store
	// TTL is how long an answer is kept; zero means [DefaultCacheTTL].
	TTL time.Duration
	// Size bounds the number of cached keys; zero means [DefaultCacheSize].
	Size int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu      sync.RWMutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	t       *Tenant // nil: not found
	expires time.Time
}

var _ Lookup = (*CachedLookup)(nil)

// LookupTenant returns the tenant with id or slug key, from the cache when
// fresh. It returns a copy the caller may keep. Errors other than not found
// are not cached.
func (c *CachedLookup) LookupTenant(ctx context.Context, key string) (*Tenant, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || now.After(e.expires) {
		t, err := c.Store.Lookup(ctx, c.DB, key)
		if err != nil && !errors.Is(err, ErrTenantNotFound) {
			return nil, err
		}
		e = cacheEntry{t: t, expires: now.Add(c.ttl())}
		c.put(key, e, now)
	}
	if e.t == nil {
		return nil, ErrTenantNotFound
	}
	t := *e.t
	return &t, nil
}

// Forget drops key from the cache, so that the next lookup reads the
// database; call it after changing a tenant for immediate effect in this
// process.
func (c *CachedLookup) Forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

func (c *CachedLookup) put(key string, e cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]cacheEntry)
	}
	size := c.Size
	if size <= 0 {
		size = DefaultCacheSize
	}
	if len(c.entries) >= size {
		for k, old := range c.entries {
			if now.After(old.expires) {
				delete(c.entries, k)
			}
		}
		// Still full of fresh entries: drop arbitrary ones (map order is random).
		for k := range c.entries {
			if len(c.entries) < size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = e
}

func (c *CachedLookup) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CachedLookup) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCacheTTL
}

// Len returns the number of cached keys.
func (c *CachedLookup) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
