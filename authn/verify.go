package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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

// jwsHeader is the protected header of a compact JWS, as far as it matters
// here. Crit and B64 are read only to refuse tokens that carry them.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

var b64url = base64.RawURLEncoding.Strict()

// splitCompact splits a compact JWS into its three parts, refusing anything
// but the base64url alphabet and exactly two dots (so that there is one
// spelling of a token: the decoder would skip line breaks).
func splitCompact(token string) (header, payload, sig string, ok bool) {
	dot1, dot2 := -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.' && dot1 < 0:
			dot1 = i
		case c == '.' && dot2 < 0:
			dot2 = i
		default:
			return "", "", "", false
		}
	}
	if dot2 < 0 {
		return "", "", "", false
	}
	return token[:dot1], token[dot1+1 : dot2], token[dot2+1:], true
}

// verify checks a token's form, header, signature and claims. It parses the
// compact serialisation itself rather than through go-jose: the signing
// input is then the token's own prefix, with no re-encoding, and the header
// is decoded once into the few fields that matter. The algorithm used is
// always the one of the key the kid names, from a fixed asymmetric list.
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Principal, string, error) {
	h64, p64, s64, ok := splitCompact(token)
	if !ok || h64 == "" || p64 == "" {
		return nil, "", tokenErr(ErrTokenMalformed, "not a compact JWS")
	}
	hb, err := b64url.DecodeString(h64)
	if err != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "header encoding")
	}
	var h jwsHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "header is not a JSON object")
	}
	if h.Crit != nil || h.B64 != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "crit or b64 header")
	}
	alg := jose.SignatureAlgorithm(h.Alg)
	if !slices.Contains(v.algs, alg) {
		return nil, "", tokenErr(ErrTokenSignature, "algorithm not allowed")
	}
	if !strings.EqualFold(h.Typ, AccessTokenType) && !strings.EqualFold(h.Typ, "application/"+AccessTokenType) {
		return nil, "", tokenErr(ErrTokenClaims, "typ is not at+jwt")
	}
	if h.Kid == "" {
		return nil, "", tokenErr(ErrUnknownKey, "no kid")
	}
	key, err := v.Keys.PublicKey(ctx, h.Kid)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("authn: key source: %w", err)
	}
	if key.Algorithm != h.Alg {
		return nil, "", tokenErr(ErrTokenSignature, "algorithm does not match the key")
	}
	sig, err := b64url.DecodeString(s64)
	if err != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "signature encoding")
	}
	if !verifySignature(alg, key.Key, token[:len(h64)+1+len(p64)], sig) {
		return nil, "", tokenErr(ErrTokenSignature, "signature does not verify")
	}
	payload, err := b64url.DecodeString(p64)
	if err != nil {
		return nil, "", tokenErr(ErrTokenMalformed, "payload encoding")
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
	return p, h.Kid, nil
}

// verifySignature checks sig over input with key, by alg. The key's type must
// be the one alg uses.
func verifySignature(alg jose.SignatureAlgorithm, key any, input string, sig []byte) bool {
	switch alg {
	case jose.EdDSA:
		pub, ok := key.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
			ed25519.Verify(pub, []byte(input), sig)
	case jose.ES256:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() || len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, sum[:], r, s)
	case jose.RS256:
		pub, ok := key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < 2048 {
			return false
		}
		sum := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
	}
	return false
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
