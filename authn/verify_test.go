package authn_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func memberClaims() authn.Claims {
	return authn.Claims{Subject: uuid.New(), TenantID: uuid.New(), Role: authn.RoleAdmin}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ks := authn.NewKeySet(authn.KeySetConfig{Algorithm: alg})
			if err := ks.Rotate(time.Now()); err != nil {
				t.Fatal(err)
			}
			iss := authntest.Issuer(t, ks)
			v := authntest.Verifier(t, ks)
			c := authn.Claims{Subject: uuid.New(), TenantID: uuid.New(), Role: authn.RoleOwner, Superadmin: true, ID: "jti-1"}
			tok, exp, err := iss.Issue(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			want := authn.Principal{UserID: c.Subject, TenantID: c.TenantID, Role: c.Role, Superadmin: true, TokenID: "jti-1", ExpiresAt: exp}
			if *p != want {
				t.Fatalf("principal = %+v, want %+v", *p, want)
			}
			if !p.ExpiresAt.Equal(exp) || exp.Sub(time.Now()) > authn.DefaultTokenTTL {
				t.Fatalf("exp = %v", exp)
			}
		})
	}
}

func TestIssueHeaderAndClaims(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	c := memberClaims()
	tok := kit.Token(c)
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	key, _ := kit.Keys.SigningKey()
	for _, want := range []string{`"typ":"at+jwt"`, `"alg":"EdDSA"`, `"kid":"` + key.ID + `"`} {
		if !strings.Contains(string(header), want) {
			t.Errorf("header %s lacks %s", header, want)
		}
	}
	for _, want := range []string{`"iss":"` + authntest.TestIssuer + `"`, `"aud":"` + authntest.TestAudience + `"`,
		`"sub":"` + c.Subject.String() + `"`, `"tid":"` + c.TenantID.String() + `"`, `"role":"admin"`,
		`"exp":`, `"nbf":`, `"iat":`, `"jti":"`} {
		if !strings.Contains(string(payload), want) {
			t.Errorf("payload %s lacks %s", payload, want)
		}
	}
	if strings.Contains(string(payload), `"sa"`) {
		t.Errorf("payload %s has sa for a non-superadmin", payload)
	}
	// Two tokens get different random jtis.
	p1, _ := kit.Verifier.Verify(t.Context(), tok)
	p2, _ := kit.Verifier.Verify(t.Context(), kit.Token(c))
	if p1.TokenID == "" || p1.TokenID == p2.TokenID {
		t.Fatalf("jti %q and %q", p1.TokenID, p2.TokenID)
	}
}

func TestIssueErrors(t *testing.T) {
	t.Parallel()
	ks := authn.NewKeySet(authn.KeySetConfig{})
	iss := authntest.Issuer(t, ks)
	if _, _, err := iss.Issue(t.Context(), memberClaims()); !errors.Is(err, authn.ErrNoSigningKey) {
		t.Fatalf("empty key set: %v", err)
	}
	ks.Rotate(time.Now())
	for name, c := range map[string]authn.Claims{
		"no subject":      {TenantID: uuid.New(), Role: authn.RoleUser},
		"bad role":        {Subject: uuid.New(), TenantID: uuid.New(), Role: "root"},
		"tenant, no role": {Subject: uuid.New(), TenantID: uuid.New()},
	} {
		if _, _, err := iss.Issue(t.Context(), c); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
	long := *iss
	long.TTL = time.Hour
	if _, _, err := long.Issue(t.Context(), memberClaims()); err == nil {
		t.Error("TTL beyond the key set's MaxTokenTTL: issued")
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	c := memberClaims()
	good := kit.Token(c)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding
	now := time.Now()

	// A payload swapped in under the original signature.
	other := memberClaims()
	other.Role = authn.RoleOwner
	tampered := parts[0] + "." + strings.Split(kit.Token(other), ".")[1] + "." + parts[2]
	// A flipped signature bit.
	sig, _ := enc.DecodeString(parts[2])
	sig[0] ^= 1
	badSig := parts[0] + "." + parts[1] + "." + enc.EncodeToString(sig)
	// The same signature bytes spelt differently (unused low bits set).
	last := parts[2][len(parts[2])-1]
	respelt := good[:len(good)-1] + string(last+1)
	// JSON serialisation, with one and with two signatures.
	jsonOne := `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
	jsonTwo := `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] +
		`"},{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`
	// A key of another algorithm, in the set, whose kid is put on an EdDSA
	// signature.
	es, _ := authn.GenerateKey(jose.ES256)
	es.State = authn.KeyRetired
	if err := kit.Keys.Add(es); err != nil {
		t.Fatal(err)
	}
	active, _ := kit.Keys.SigningKey()
	// A token signed by a key of the set, claiming ES256 in its header.
	hdr, _ := enc.DecodeString(parts[0])
	algSwap := enc.EncodeToString([]byte(strings.Replace(string(hdr), `"EdDSA"`, `"ES256"`, 1))) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", authn.ErrTokenMissing},
		{"garbage", "not a token", authn.ErrTokenMalformed},
		{"two parts", parts[0] + "." + parts[1], authn.ErrTokenMalformed},
		{"four parts", good + ".x", authn.ErrTokenMalformed},
		{"too long", good + strings.Repeat("A", authn.MaxTokenSize), authn.ErrTokenMalformed},
		{"json serialisation", jsonOne, authn.ErrTokenMalformed},
		{"two signatures", jsonTwo, authn.ErrTokenMalformed},
		{"alg none", kit.AlgNone(c), authn.ErrTokenSignature},
		{"alg none, no signature part", strings.TrimSuffix(kit.AlgNone(c), "."), authn.ErrTokenMalformed},
		{"HS256 with public key as secret", kit.HMACWithPublicKey(c), authn.ErrTokenSignature},
		{"HS256 with random secret", kit.HMAC(c, []byte(strings.Repeat("k", 32)), active.ID), authn.ErrTokenSignature},
		{"alg of another key type", algSwap, authn.ErrTokenSignature},
		{"kid of a key of another alg", kit.Mint(authntest.Spec{Claims: c, KeyID: es.ID}), authn.ErrTokenSignature},
		{"tampered payload", tampered, authn.ErrTokenSignature},
		{"flipped signature bit", badSig, authn.ErrTokenSignature},
		{"non-canonical signature encoding", respelt, authn.ErrTokenMalformed},
		{"unknown key", kit.UnknownKey(c), authn.ErrUnknownKey},
		{"unknown kid", kit.Mint(authntest.Spec{Claims: c, KeyID: "nope"}), authn.ErrUnknownKey},
		{"missing kid", kit.Mint(authntest.Spec{Claims: c, NoKeyID: true}), authn.ErrUnknownKey},
		{"typ JWT", kit.WrongType(c, "JWT"), authn.ErrTokenClaims},
		{"typ id+jwt", kit.WrongType(c, "id+jwt"), authn.ErrTokenClaims},
		{"no typ", kit.Mint(authntest.Spec{Claims: c, NoType: true}), authn.ErrTokenClaims},
		{"missing exp", kit.Mint(authntest.Spec{Claims: c, NoExpiry: true}), authn.ErrTokenClaims},
		{"expired", kit.Expired(c), authn.ErrTokenExpired},
		{"expired beyond leeway", kit.Mint(authntest.Spec{Claims: c, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-31 * time.Second)}), authn.ErrTokenExpired},
		{"nbf in the future", kit.Mint(authntest.Spec{Claims: c, NotBefore: now.Add(time.Minute)}), authn.ErrTokenNotYetValid},
		{"iat in the future", kit.Mint(authntest.Spec{Claims: c, IssuedAt: now.Add(time.Hour)}), authn.ErrTokenNotYetValid},
		{"wrong issuer", kit.Mint(authntest.Spec{Claims: c, Issuer: "https://evil.test"}), authn.ErrTokenClaims},
		{"wrong audience", kit.Mint(authntest.Spec{Claims: c, Audience: "https://other.test"}), authn.ErrTokenClaims},
		{"no audience", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"aud": nil}}), authn.ErrTokenClaims},
		{"sub not a uuid", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"sub": "alice"}}), authn.ErrTokenClaims},
		{"tid not a uuid", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"tid": "acme"}}), authn.ErrTokenClaims},
		{"unknown role", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"role": "root"}}), authn.ErrTokenClaims},
		{"role without tenant", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"tid": nil}}), authn.ErrTokenClaims},
		{"exp not a number", kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"exp": "soon"}}), authn.ErrTokenMalformed},
		{"crit header", critToken(t, kit, c), authn.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := kit.Verifier.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want %v", p, err, tt.want)
			}
			if p != nil {
				t.Fatal("principal returned with an error")
			}
			if !authn.IsTokenError(err) {
				t.Fatalf("IsTokenError(%v) = false", err)
			}
		})
	}
}

func critToken(t *testing.T, kit *authntest.Kit, c authn.Claims) string {
	key, _ := kit.Keys.SigningKey()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: key.PrivateJWK()},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType).WithCritical("exp").WithHeader("exp", 1))
	if err != nil {
		t.Fatal(err)
	}
	tok := kit.Token(c)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	c := memberClaims()
	now := time.Now()
	for name, tok := range map[string]string{
		"typ application/at+jwt": kit.WrongType(c, "application/at+jwt"),
		"typ AT+JWT":             kit.WrongType(c, "AT+JWT"),
		"expired within leeway":  kit.Mint(authntest.Spec{Claims: c, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-10 * time.Second)}),
		"nbf within leeway":      kit.Mint(authntest.Spec{Claims: c, NotBefore: now.Add(10 * time.Second)}),
		"aud as a list":          kit.Mint(authntest.Spec{Claims: c, Extra: map[string]any{"aud": []string{"x", authntest.TestAudience}}}),
		"no tenant":              kit.Mint(authntest.Spec{Claims: authn.Claims{Subject: c.Subject, Superadmin: true}}),
	} {
		p, err := kit.Verifier.Verify(t.Context(), tok)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p.UserID != c.Subject {
			t.Errorf("%s: user %v", name, p.UserID)
		}
	}
}

func TestVerifyAlgorithmsAllowList(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	tok := kit.Token(memberClaims())
	v := authntest.Verifier(t, kit.Keys)
	v.Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.HS256}
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authn.ErrTokenSignature) {
		t.Fatalf("EdDSA token with ES256 allow-list: %v", err)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestVerifyCache(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	kit := authntest.New(t)
	kit.Issuer.Now = clk.now
	cache := authn.NewTokenCache(2)
	revoked := map[string]bool{}
	calls := 0
	v := &authn.Verifier{Keys: kit.Keys, Issuer: authntest.TestIssuer, Audience: authntest.TestAudience,
		Now: clk.now, Cache: cache,
		Revoked: func(_ context.Context, p *authn.Principal) error {
			calls++
			if revoked[p.TokenID] {
				return authn.ErrTokenRevoked
			}
			return nil
		}}
	c := memberClaims()
	c.ID = "one"
	tok := kit.Token(c)
	p1, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 1 {
		t.Fatalf("cache len %d", cache.Len())
	}
	p1.Role = authn.RoleOwner // the caller's copy
	p2, err := v.Verify(t.Context(), tok)
	if err != nil || p2.Role != authn.RoleAdmin {
		t.Fatalf("cached verify: %+v, %v", p2, err)
	}
	// The hook runs on cache hits too.
	revoked["one"] = true
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authn.ErrTokenRevoked) || calls != 3 {
		t.Fatalf("revoked cached token: %v (hook calls %d)", err, calls)
	}
	delete(revoked, "one")
	// The entry does not outlive exp: past exp+leeway the full check says expired.
	clk.advance(authn.DefaultTokenTTL + authn.DefaultLeeway)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authn.ErrTokenExpired) {
		t.Fatalf("after exp: %v", err)
	}
	// Bounded: three tokens in a cache of two.
	for range 3 {
		if _, err := v.Verify(t.Context(), kit.Token(memberClaims())); err != nil {
			t.Fatal(err)
		}
	}
	if cache.Len() != 2 {
		t.Fatalf("cache len %d, want 2", cache.Len())
	}
	// A removed key takes its cached tokens with it.
	tok = kit.Token(memberClaims())
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	key, _ := kit.Keys.SigningKey()
	kit.Keys.Remove(key.ID)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("cached token of a removed key: %v", err)
	}
}

func TestVerifyCacheWithinLeeway(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	kit := authntest.New(t)
	kit.Issuer.Now = clk.now
	v := authntest.Verifier(t, kit.Keys)
	v.Now, v.Cache = clk.now, authn.NewTokenCache(0)
	tok := kit.Token(memberClaims())
	v.Verify(t.Context(), tok)
	// Just past exp, within the leeway: not served from the cache (the entry
	// never outlives exp) but still accepted by the full check.
	clk.advance(authn.DefaultTokenTTL + time.Second)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

func TestVerifierNeedsConfig(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	v := &authn.Verifier{Keys: kit.Keys}
	_, err := v.Verify(t.Context(), kit.Token(memberClaims()))
	if err == nil || authn.IsTokenError(err) {
		t.Fatalf("verifier without issuer: %v", err)
	}
}
