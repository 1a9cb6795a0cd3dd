// Package authntest mints access tokens for tests of code that uses
// [authn.Middleware] or [authn.Verifier]: valid ones for the happy path and
// deliberately broken ones (expired, wrong typ, alg none, unknown key) for
// negative tests. It is the authn counterpart of net/http/httptest.
//
//	kit := authntest.New(t)
//	h := authn.Middleware(kit.Verifier)(myHandler)
//	req := httptest.NewRequest("GET", "/", nil)
//	authntest.SetBearer(req, kit.Token(authn.Claims{Subject: userID, TenantID: tid, Role: authn.RoleAdmin}))
package authntest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
)

// Issuer and audience of the tokens a [Kit] mints.
const (
	TestIssuer   = "https://saaskit.test"
	TestAudience = "https://api.saaskit.test"
)

// NewKeySet returns a key set with one active Ed25519 key and one next key.
func NewKeySet(tb testing.TB) *authn.KeySet {
	tb.Helper()
	ks := authn.NewKeySet(authn.KeySetConfig{})
	if err := ks.Rotate(time.Now()); err != nil {
		tb.Fatalf("authntest: %v", err)
	}
	return ks
}

// Issuer returns an issuer signing with ks for [TestIssuer] and
// [TestAudience].
func Issuer(tb testing.TB, ks *authn.KeySet) *authn.Issuer {
	tb.Helper()
	return &authn.Issuer{Keys: ks, Issuer: TestIssuer, Audience: TestAudience}
}

// Verifier returns a verifier of the tokens that [Issuer] signs with ks.
func Verifier(tb testing.TB, ks *authn.KeySet) *authn.Verifier {
	tb.Helper()
	return &authn.Verifier{Keys: ks, Issuer: TestIssuer, Audience: TestAudience}
}

// Token issues a token for c with iss, failing the test on error.
func Token(tb testing.TB, iss *authn.Issuer, c authn.Claims) string {
	tb.Helper()
	tok, _, err := iss.Issue(context.Background(), c)
	if err != nil {
		tb.Fatalf("authntest: issue: %v", err)
	}
	return tok
}

// SetBearer sets r's Authorization header to "Bearer token".
func SetBearer(r *http.Request, token string) { r.Header.Set("Authorization", "Bearer "+token) }

// Kit bundles a key set with an issuer and a verifier that agree, and mints
// valid and invalid tokens. Its fields may be adjusted before use.
type Kit struct {
	Keys     *authn.KeySet
	Issuer   *authn.Issuer
	Verifier *authn.Verifier
	tb       testing.TB
}

// New returns a kit with a fresh key set ([NewKeySet]).
func New(tb testing.TB) *Kit {
	tb.Helper()
	ks := NewKeySet(tb)
	return &Kit{Keys: ks, Issuer: Issuer(tb, ks), Verifier: Verifier(tb, ks), tb: tb}
}

// Token returns a valid token for c.
func (k *Kit) Token(c authn.Claims) string {
	k.tb.Helper()
	return Token(k.tb, k.Issuer, c)
}

// Member returns a valid token for a new random user with role in tenant, and
// that user's id.
func (k *Kit) Member(tenant uuid.UUID, role authn.Role) (string, uuid.UUID) {
	k.tb.Helper()
	user := uuid.New()
	return k.Token(authn.Claims{Subject: user, TenantID: tenant, Role: role}), user
}

// Spec describes a token to mint with [Kit.Mint], valid by default: every
// zero field takes the value a valid token has.
type Spec struct {
	Claims authn.Claims
	// Type is the typ header; default "at+jwt". NoType omits it.
	Type   string
	NoType bool
	// Issuer and Audience default to the kit's.
	Issuer, Audience string
	// IssuedAt defaults to now; ExpiresAt to IssuedAt plus 15 minutes;
	// NotBefore to IssuedAt. NoExpiry omits exp.
	IssuedAt, ExpiresAt, NotBefore time.Time
	NoExpiry                       bool
	// Key signs the token; default the kit's active key. A key that is not in
	// the kit's set makes a token with an unknown kid.
	Key *authn.Key
	// KeyID overrides the kid header; NoKeyID omits it.
	KeyID   string
	NoKeyID bool
	// Extra claims are merged into the payload, overriding the others; a nil
	// value removes the claim.
	Extra map[string]any
}

// Mint signs a token described by s, which may be invalid in any way s says.
func (k *Kit) Mint(s Spec) string {
	k.tb.Helper()
	key := s.Key
	if key == nil {
		var ok bool
		if key, ok = k.Keys.SigningKey(); !ok {
			k.tb.Fatal("authntest: the kit's key set has no active key")
		}
	}
	opts := &jose.SignerOptions{}
	if !s.NoType {
		typ := s.Type
		if typ == "" {
			typ = authn.AccessTokenType
		}
		opts.WithType(jose.ContentType(typ))
	}
	priv := key.PrivateJWK()
	switch {
	case s.NoKeyID:
		priv.KeyID = ""
	case s.KeyID != "":
		priv.KeyID = s.KeyID
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: priv}, opts)
	if err != nil {
		k.tb.Fatalf("authntest: signer: %v", err)
	}
	return k.sign(signer, s)
}

func (k *Kit) payload(s Spec) []byte {
	k.tb.Helper()
	iat := s.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	exp := s.ExpiresAt
	if exp.IsZero() {
		exp = iat.Add(15 * time.Minute)
	}
	nbf := s.NotBefore
	if nbf.IsZero() {
		nbf = iat
	}
	iss, aud := s.Issuer, s.Audience
	if iss == "" {
		iss = k.Issuer.Issuer
	}
	if aud == "" {
		aud = k.Issuer.Audience
	}
	c := s.Claims
	if c.Subject == uuid.Nil {
		c.Subject = uuid.New()
	}
	m := map[string]any{
		"iss": iss, "aud": aud, "sub": c.Subject.String(),
		"iat": iat.Unix(), "nbf": nbf.Unix(), "jti": "test",
	}
	if !s.NoExpiry {
		m["exp"] = exp.Unix()
	}
	if c.TenantID != uuid.Nil {
		m["tid"] = c.TenantID.String()
	}
	if c.Role != "" {
		m["role"] = string(c.Role)
	}
	if c.Superadmin {
		m["sa"] = true
	}
	for name, v := range s.Extra {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		k.tb.Fatalf("authntest: %v", err)
	}
	return b
}

func (k *Kit) sign(signer jose.Signer, s Spec) string {
	k.tb.Helper()
	jws, err := signer.Sign(k.payload(s))
	if err != nil {
		k.tb.Fatalf("authntest: sign: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		k.tb.Fatalf("authntest: %v", err)
	}
	return tok
}

// Expired returns a token for c that expired an hour ago.
func (k *Kit) Expired(c authn.Claims) string {
	k.tb.Helper()
	iat := time.Now().Add(-2 * time.Hour)
	return k.Mint(Spec{Claims: c, IssuedAt: iat, ExpiresAt: iat.Add(time.Hour)})
}

// WrongType returns a token for c, validly signed, whose typ header is typ
// (such as "JWT" or "id+jwt") instead of at+jwt.
func (k *Kit) WrongType(c authn.Claims, typ string) string {
	k.tb.Helper()
	return k.Mint(Spec{Claims: c, Type: typ})
}

// UnknownKey returns a token for c signed by a fresh key that is not in the
// kit's key set.
func (k *Kit) UnknownKey(c authn.Claims) string {
	k.tb.Helper()
	key, err := authn.GenerateKey(jose.EdDSA)
	if err != nil {
		k.tb.Fatalf("authntest: %v", err)
	}
	return k.Mint(Spec{Claims: c, Key: key})
}

// AlgNone returns an unsigned token for c with alg "none", carrying the
// active key's kid.
func (k *Kit) AlgNone(c authn.Claims) string {
	k.tb.Helper()
	kid := ""
	if key, ok := k.Keys.SigningKey(); ok {
		kid = key.ID
	}
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": authn.AccessTokenType, "kid": kid})
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(k.payload(Spec{Claims: c})) + "."
}

// HMACWithPublicKey returns a token for c signed with HS256 using the active
// key's public key as the HMAC secret (the raw key for Ed25519, the public
// JWK's JSON otherwise): the classic algorithm-confusion attack, which a
// verifier must refuse.
func (k *Kit) HMACWithPublicKey(c authn.Claims) string {
	k.tb.Helper()
	key, ok := k.Keys.SigningKey()
	if !ok {
		k.tb.Fatal("authntest: the kit's key set has no active key")
	}
	pub := key.PublicJWK()
	secret, ok := pub.Key.(ed25519.PublicKey)
	if !ok {
		b, err := pub.MarshalJSON()
		if err != nil {
			k.tb.Fatalf("authntest: %v", err)
		}
		secret = b
	}
	return k.HMAC(c, secret, key.ID)
}

// HMAC returns a token for c signed with HS256 and secret (at least 32
// bytes), with the given kid.
func (k *Kit) HMAC(c authn.Claims, secret []byte, kid string) string {
	k.tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType).WithHeader("kid", kid))
	if err != nil {
		k.tb.Fatalf("authntest: %v", err)
	}
	return k.sign(signer, Spec{Claims: c})
}
