package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// AccessTokenType is the typ header of access tokens (RFC 9068). Verifiers
// also accept its long form "application/at+jwt", in any case.
const AccessTokenType = "at+jwt"

// Claims are what an access token says about its holder.
type Claims struct {
	// Subject is the user's id (sub). Required.
	Subject uuid.UUID
	// TenantID is the tenant the token is for (tid); uuid.Nil for a token that
	// is bound to no tenant.
	TenantID uuid.UUID
	// Role is the user's role in TenantID (role). Required with a TenantID.
	Role Role
	// Superadmin marks a platform operator (sa).
	Superadmin bool
	// ID is the token's id (jti); a random one when empty.
	ID string
}

// wireClaims is the JSON claims set of an access token.
type wireClaims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`
	Audience   jwt.Audience     `json:"aud"`
	Expiry     *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore  *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt   *jwt.NumericDate `json:"iat,omitempty"`
	ID         string           `json:"jti,omitempty"`
	TenantID   string           `json:"tid,omitempty"`
	Role       Role             `json:"role,omitempty"`
	Superadmin bool             `json:"sa,omitempty"`
}

// Issuer signs access tokens with the active key of a [KeySet]. Set Keys,
// Issuer and Audience; the other fields have defaults. It is safe for
// concurrent use, also while the key set rotates.
type Issuer struct {
	// Keys signs tokens with its newest active key.
	Keys *KeySet
	// Issuer is the iss claim, such as "https://auth.example.com". Required.
	Issuer string
	// Audience is the aud claim, such as "https://api.example.com". Required.
	Audience string
	// TTL is the lifetime of a token; default DefaultTokenTTL (15 minutes). It
	// may not exceed the key set's MaxTokenTTL.
	TTL time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Issue signs an access token for c. The JWT header carries typ at+jwt and the
// signing key's kid; the claims are iss, aud, sub, exp, nbf, iat, jti, tid,
// role, and sa when c.Superadmin. It returns the token and its expiry, or an
// error wrapping [ErrNoSigningKey] when the key set has no active key.
func (iss *Issuer) Issue(ctx context.Context, c Claims) (token string, exp time.Time, err error) {
	if iss.Keys == nil || iss.Issuer == "" || iss.Audience == "" {
		return "", time.Time{}, errors.New("authn: issuer needs Keys, Issuer and Audience")
	}
	if c.Subject == uuid.Nil {
		return "", time.Time{}, errors.New("authn: issue: empty subject")
	}
	if c.Role != "" && !c.Role.Valid() {
		return "", time.Time{}, fmt.Errorf("authn: issue: %w: %q", ErrInvalidRole, c.Role)
	}
	if c.TenantID != uuid.Nil && c.Role == "" {
		return "", time.Time{}, errors.New("authn: issue: a tenant token needs a role")
	}
	ttl := iss.TTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if max := iss.Keys.config().MaxTokenTTL; ttl > max {
		return "", time.Time{}, fmt.Errorf("authn: issue: TTL %s exceeds the key set's MaxTokenTTL %s", ttl, max)
	}
	key, ok := iss.Keys.SigningKey()
	if !ok {
		return "", time.Time{}, ErrNoSigningKey
	}
	now := time.Now
	if iss.Now != nil {
		now = iss.Now
	}
	t := now().Truncate(time.Second)
	exp = t.Add(ttl)
	if c.ID == "" {
		c.ID = randomID()
	}
	w := wireClaims{
		Issuer:     iss.Issuer,
		Subject:    c.Subject.String(),
		Audience:   jwt.Audience{iss.Audience},
		Expiry:     jwt.NewNumericDate(exp),
		NotBefore:  jwt.NewNumericDate(t),
		IssuedAt:   jwt.NewNumericDate(t),
		ID:         c.ID,
		Role:       c.Role,
		Superadmin: c.Superadmin,
	}
	if c.TenantID != uuid.Nil {
		w.TenantID = c.TenantID.String()
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: issue: %w", err)
	}
	jws, err := key.signer.Sign(payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: issue: sign: %w", err)
	}
	token, err = jws.CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: issue: %w", err)
	}
	return token, exp, nil
}

// randomID returns 128 random bits, base64url.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
