package authn_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func kids(ks *authn.KeySet, state authn.KeyState) []string {
	var out []string
	for _, k := range ks.Keys() {
		if k.State == state {
			out = append(out, k.ID)
		}
	}
	return out
}

func jwksKids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestGenerateKeyThumbprint(t *testing.T) {
	t.Parallel()
	for _, alg := range []jose.SignatureAlgorithm{"", jose.EdDSA, jose.ES256, jose.RS256} {
		k, err := authn.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicJWK()
		tp, _ := pub.Thumbprint(0x5) // crypto.SHA256
		if k.ID != base64.RawURLEncoding.EncodeToString(tp) || pub.KeyID != k.ID {
			t.Errorf("%s: kid %q is not the RFC 7638 thumbprint", alg, k.ID)
		}
		if !pub.IsPublic() || pub.Use != "sig" || (alg != "" && pub.Algorithm != string(alg)) {
			t.Errorf("%s: public JWK %+v", alg, pub)
		}
		if strings.Contains(k.String(), `"d"`) {
			t.Errorf("String shows the private key")
		}
	}
	if _, err := authn.GenerateKey(jose.HS256); !errors.Is(err, authn.ErrUnsupportedAlgorithm) {
		t.Fatalf("HS256 key: %v", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	ks := authn.NewKeySet(authn.KeySetConfig{Now: clk.now})
	iss := authntest.Issuer(t, ks)
	iss.Now = clk.now
	v := authntest.Verifier(t, ks)
	v.Now = clk.now

	if err := ks.Rotate(clk.now()); err != nil {
		t.Fatal(err)
	}
	first, next := kids(ks, authn.KeyActive), kids(ks, authn.KeyNext)
	if len(first) != 1 || len(next) != 1 {
		t.Fatalf("after first rotate: active %v next %v", first, next)
	}
	// The next key is published before it signs.
	if !slices.Contains(jwksKids(ks.JWKS()), next[0]) {
		t.Fatal("next key not in JWKS")
	}
	old, _, err := iss.Issue(t.Context(), memberClaims())
	if err != nil {
		t.Fatal(err)
	}
	if kid := headerKid(t, old); kid != first[0] {
		t.Fatalf("signed with %s, want active %s", kid, first[0])
	}

	clk.advance(time.Hour)
	if err := ks.Rotate(clk.now()); err != nil {
		t.Fatal(err)
	}
	if got := kids(ks, authn.KeyActive); !slices.Equal(got, next) {
		t.Fatalf("active after rotate = %v, want the former next %v", got, next)
	}
	if got := kids(ks, authn.KeyRetired); !slices.Equal(got, first) {
		t.Fatalf("retired = %v, want %v", got, first)
	}
	fresh, _, _ := iss.Issue(t.Context(), memberClaims())
	if kid := headerKid(t, fresh); kid != next[0] {
		t.Fatalf("new token signed with %s, want %s", kid, next[0])
	}
	// A token of the retired key still verifies (it was issued an hour ago,
	// so move the clock back for its exp; the key state is what matters).
	clk.advance(-time.Hour)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("token of retired key: %v", err)
	}
	clk.advance(time.Hour)

	// Retired keys stay published until MaxTokenTTL+Leeway have passed.
	clk.advance(authn.DefaultTokenTTL)
	if dropped := ks.Prune(clk.now()); len(dropped) != 0 {
		t.Fatalf("pruned too early: %v", dropped)
	}
	if !slices.Contains(jwksKids(ks.JWKS()), first[0]) {
		t.Fatal("retired key not in JWKS")
	}
	clk.advance(authn.DefaultLeeway + time.Second)
	if dropped := ks.Prune(clk.now()); !slices.Equal(dropped, first) {
		t.Fatalf("pruned %v, want %v", dropped, first)
	}
	if slices.Contains(jwksKids(ks.JWKS()), first[0]) {
		t.Fatal("pruned key still in JWKS")
	}
	clk.advance(-2 * time.Hour)
	if _, err := v.Verify(t.Context(), old); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("token of pruned key: %v", err)
	}
	if n := len(ks.JWKS().Keys); n != 2 {
		t.Fatalf("JWKS has %d keys, want active and next", n)
	}
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h struct{ Kid string }
	json.Unmarshal(b, &h)
	return h.Kid
}

func TestKeySetPersistence(t *testing.T) {
	t.Parallel()
	ks := authn.NewKeySet(authn.KeySetConfig{})
	now := time.Now()
	ks.Rotate(now)
	es, _ := authn.GenerateKey(jose.ES256)
	es.State = authn.KeyRetired
	ks.Add(es)
	tok := authntest.Token(t, authntest.Issuer(t, ks), memberClaims())

	b, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	var restored authn.KeySet
	if err := json.Unmarshal(b, &restored); err != nil {
		t.Fatal(err)
	}
	if _, err := authntest.Verifier(t, &restored).Verify(t.Context(), tok); err != nil {
		t.Fatalf("restored set does not verify: %v", err)
	}
	a, _ := ks.SigningKey()
	r, _ := restored.SigningKey()
	if a.ID != r.ID || !a.ActivatedAt.Equal(r.ActivatedAt) {
		t.Fatalf("signing key %v, restored %v", a, r)
	}
	if got, want := len(restored.Keys()), 3; got != want {
		t.Fatalf("restored %d keys, want %d", got, want)
	}
	// A restored set signs tokens the original verifies.
	tok2 := authntest.Token(t, authntest.Issuer(t, &restored), memberClaims())
	if _, err := authntest.Verifier(t, ks).Verify(t.Context(), tok2); err != nil {
		t.Fatal(err)
	}
	// Public keys only, or a tampered kid, do not restore.
	pubOnly, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"state": "active", "jwk": a.PublicJWK()}}})
	if err := new(authn.KeySet).UnmarshalJSON(pubOnly); err == nil {
		t.Fatal("restored a public key as a signing key")
	}
	if err := new(authn.KeySet).UnmarshalJSON([]byte(`{"keys":[{"state":"bogus","jwk":` + string(mustJSON(t, a.PrivateJWK())) + `}]}`)); err == nil {
		t.Fatal("restored a key with an unknown state")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWKSHandler(t *testing.T) {
	t.Parallel()
	ks := authntest.NewKeySet(t)
	srv := httptest.NewServer(authn.JWKSHandler(ks, 10*time.Minute))
	defer srv.Close()

	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(res.Body).Decode(&set)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=600" {
		t.Fatalf("Cache-Control %q", cc)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatal("JWKS serves a private key")
		}
	}

	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("If-None-Match", etag)
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d", res.StatusCode)
	}

	ks.Rotate(time.Now())
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("ETag") == etag {
		t.Fatalf("after rotation: status %d, etag %q", res.StatusCode, res.Header.Get("ETag"))
	}

	res, _ = http.Post(srv.URL, "text/plain", nil)
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("POST: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestKeySetConcurrentRotation(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	h := authn.JWKSHandler(kit.Keys, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, _, err := kit.Issuer.Issue(t.Context(), memberClaims())
				if err != nil {
					t.Error(err)
					return
				}
				// Rotation retires, never drops: every token verifies.
				if _, err := kit.Verifier.Verify(t.Context(), tok); err != nil {
					t.Error(err)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				if rec.Code != 200 {
					t.Errorf("JWKS status %d", rec.Code)
				}
			}
		})
	}
	for range 20 {
		if err := kit.Keys.Rotate(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
