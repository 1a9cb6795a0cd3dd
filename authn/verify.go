package authn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// MaxTokenSize is the longest token a [Verifier] reads, in bytes.
const MaxTokenSize = 8 << 10

// KeySource finds the public key that verifies a token. *[KeySet] is one; a
// client of a remote JWKS would be another.
type KeySource interface {
	// PublicKey returns the public JWK with the given kid, whose Algorithm
	// names the only algorithm it verifies, or an error wrapping
	// [ErrUnknownKey]. It must be safe for concurrent use.
	PublicKey(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

var _ KeySource = (*KeySet)(nil)

// Verifier checks access tokens. Set Keys, Issuer and Audience; the other
// fields have defaults. Do not change its fields after the first Verify. It
// is safe for concurrent use.
//
// Verification is strict: the token must be a compact JWS with one signature,
// an asymmetric algorithm from Algorithms that is also the algorithm of the
// key its kid names, typ at+jwt, the expected iss and aud, an exp, and
// nbf/iat not in the future.
type Verifier struct {
	// Keys finds verification keys by kid.
	Keys KeySource
	// Issuer is the required iss claim.
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat; default
	// DefaultLeeway (30 seconds); negative means none.
	Leeway time.Duration
	// Algorithms are the signature algorithms accepted; default EdDSA, ES256
	// and RS256. Others (none, HMAC) are never accepted, whatever this says.
	Algorithms []jose.SignatureAlgorithm
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Cache, if not nil, remembers verified tokens until they expire, so that
	// a token presented again skips the signature check.
	Cache *TokenCache
	// Revoked, if not nil, is called with every principal before Verify
	// accepts it, from the cache or not. It returns an error (wrapping
	// [ErrTokenRevoked] for a revoked token) to refuse it.
	Revoked func(ctx context.Context, p *Principal) error

	once sync.Once
	algs []jose.SignatureAlgorithm
}

func (v *Verifier) init() {
	v.once.Do(func() {
		want := v.Algorithms
		if len(want) == 0 {
			want = supportedAlgorithms
		}
		for _, a := range want {
			if slices.Contains(supportedAlgorithms, a) && !slices.Contains(v.algs, a) {
				v.algs = append(v.algs, a)
			}
		}
	})
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) leeway() time.Duration {
	switch {
	case v.Leeway < 0:
		return 0
	case v.Leeway == 0:
		return DefaultLeeway
	}
	return v.Leeway
}

func tokenErr(sentinel error, why string) error {
	return fmt.Errorf("%w: %s", sentinel, why)
}

// Verify checks token and returns the principal it carries. A bad token gets
// an error wrapping one of [ErrTokenMissing], [ErrTokenMalformed],
// [ErrTokenSignature], [ErrUnknownKey], [ErrTokenExpired],
// [ErrTokenNotYetValid] or [ErrTokenClaims]; an error from the Revoked hook
// is returned as it is. The returned principal is the caller's to keep.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		return nil, errors.New("authn: verifier needs Keys, Issuer and Audience")
	}
	if len(token) > MaxTokenSize {
		return nil, tokenErr(ErrTokenMalformed, "too long")
	}
	v.init()
	now := v.now()

	var sum [32]byte
	if v.Cache != nil {
		sum = sha256.Sum256([]byte(token))
		if p, kid, ok := v.Cache.get(sum, now); ok {
			// A key removed from the source (a compromised key) takes its
			// cached tokens with it.
			if _, err := v.Keys.PublicKey(ctx, kid); err == nil {
				return v.accept(ctx, &p)
			}
		}
	}

	p, kid, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if v.Cache != nil && now.Before(p.ExpiresAt) {
		v.Cache.put(sum, *p, kid)
	}
	return v.accept(ctx, p)
}

func (v *Verifier) accept(ctx context.Context, p *Principal) (*Principal, error) {
	if v.Revoked != nil {
		if err := v.Revoked(ctx, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Principal, string, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, "", tokenErr(ErrTokenSignature, "algorithm not allowed")
		}
		return nil, "", tokenErr(ErrTokenMalformed, "not a compact JWS")
	}
	if len(jws.Signatures) != 1 {
		return nil, "", tokenErr(ErrTokenMalformed, "not exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, "", tokenErr(ErrTokenMalformed, "crit header")
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
		return nil, "", tokenErr(ErrTokenClaims, "typ is not at+jwt")
	}
	if h.KeyID == "" {
		return nil, "", tokenErr(ErrUnknownKey, "no kid")
	}
	key, err := v.Keys.PublicKey(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("authn: key source: %w", err)
	}
	if key.Algorithm != h.Algorithm || !key.IsPublic() {
		return nil, "", tokenErr(ErrTokenSignature, "algorithm does not match the key")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, "", tokenErr(ErrTokenSignature, "signature does not verify")
	}

	var c wireClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "claims are not a JSON object")
	}
	if c.Issuer != v.Issuer {
		return nil, "", tokenErr(ErrTokenClaims, "wrong issuer")
	}
	if !slices.Contains(c.Audience, v.Audience) {
		return nil, "", tokenErr(ErrTokenClaims, "wrong audience")
	}
	if c.Expiry == nil {
		return nil, "", tokenErr(ErrTokenClaims, "no exp")
	}
	leeway := v.leeway()
	exp := c.Expiry.Time()
	if !now.Before(exp.Add(leeway)) {
		return nil, "", tokenErr(ErrTokenExpired, "expired")
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time()) {
		return nil, "", tokenErr(ErrTokenNotYetValid, "nbf in the future")
	}
	if c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.Time()) {
		return nil, "", tokenErr(ErrTokenNotYetValid, "iat in the future")
	}
	p := &Principal{Superadmin: c.Superadmin, TokenID: c.ID, ExpiresAt: exp, Role: c.Role}
	if p.UserID, err = uuid.Parse(c.Subject); err != nil || p.UserID == uuid.Nil {
		return nil, "", tokenErr(ErrTokenClaims, "sub is not a user id")
	}
	if c.TenantID != "" {
		if p.TenantID, err = uuid.Parse(c.TenantID); err != nil || p.TenantID == uuid.Nil {
			return nil, "", tokenErr(ErrTokenClaims, "tid is not a tenant id")
		}
		if !c.Role.Valid() {
			return nil, "", tokenErr(ErrTokenClaims, "no valid role")
		}
	} else if c.Role != "" {
		return nil, "", tokenErr(ErrTokenClaims, "role without tid")
	}
	return p, h.KeyID, nil
}

// DefaultTokenCacheSize is the capacity of a [TokenCache] made with size 0.
const DefaultTokenCacheSize = 10000

// TokenCache remembers verified tokens, keyed by the SHA-256 of the token, so
// that a client presenting the same token on every request pays for its
// signature once. It holds at most its size of entries, evicting the oldest,
// and never returns an entry at or after its token's exp. It is safe for
// concurrent use.
type TokenCache struct {
	mu   sync.RWMutex
	m    map[[32]byte]cacheEntry
	ring [][32]byte
	next int
}

type cacheEntry struct {
	p   Principal
	kid string
}

// NewTokenCache returns a cache of at most size tokens; DefaultTokenCacheSize
// when size <= 0.
func NewTokenCache(size int) *TokenCache {
	if size <= 0 {
		size = DefaultTokenCacheSize
	}
	return &TokenCache{m: make(map[[32]byte]cacheEntry, size), ring: make([][32]byte, 0, size)}
}

// Len returns the number of cached tokens.
func (c *TokenCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func (c *TokenCache) get(sum [32]byte, now time.Time) (Principal, string, bool) {
	c.mu.RLock()
	e, ok := c.m[sum]
	c.mu.RUnlock()
	if !ok || !now.Before(e.p.ExpiresAt) {
		return Principal{}, "", false
	}
	return e.p, e.kid, true
}

func (c *TokenCache) put(sum [32]byte, p Principal, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[sum]; ok {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, sum)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = sum
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[sum] = cacheEntry{p: p, kid: kid}
}
