// Command jwt-service protects an HTTP API with saaskit's access tokens,
// with package authn alone.
//
// It shows an issuer and an API in one process: a key set (Ed25519) whose
// public keys are served as a JWKS, an Issuer that signs access tokens, and
// authn.Middleware plus authn.Require(authn.RoleAdmin) in front of an admin
// route. It prints what the API answers to an admin token (200), a user
// token (403), no token (401 with a WWW-Authenticate challenge) and a forged
// one (401), then rotates the signing key: the token signed before the
// rotation still verifies, new tokens carry the new kid, and the JWKS lists
// both.
//
// Run it with:
//
//	go run ./examples/jwt-service
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
)

const (
	issuerURL   = "https://auth.example.com"
	audienceURL = "https://api.example.com"
)

// Fixed ids, so that the output is the same on every run.
var (
	tenantID = uuid.MustParse("0190f1c2-0000-7000-8000-00000000a001")
	adaID    = uuid.MustParse("0190f1c2-0000-7000-8000-000000000001") // an admin
	bobID    = uuid.MustParse("0190f1c2-0000-7000-8000-000000000002") // a user
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// newAPI is the service: the JWKS for other services and clients, a route
// for any member of a tenant, and one for its admins (and owners).
func newAPI(keys *authn.KeySet, v *authn.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", authn.JWKSHandler(keys, 5*time.Minute))

	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authn.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "you are %s, %s of tenant %s", p.UserID, p.Role, p.TenantID)
	})
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authn.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "admin report for tenant %s", p.TenantID)
	})
	auth := authn.Middleware(v)
	mux.Handle("GET /api/me", auth(authn.Require(authn.RoleUser)(me)))
	mux.Handle("GET /api/admin/report", auth(authn.Require(authn.RoleAdmin)(report)))
	return mux
}

func run(w io.Writer) error {
	ctx := context.Background()

	// The key set: Rotate on an empty set makes the first active key and
	// the next one, published before it signs. Persist it with MarshalJSON.
	keys := authn.NewKeySet(authn.KeySetConfig{})
	if err := keys.Rotate(time.Now()); err != nil {
		return err
	}
	iss := &authn.Issuer{Keys: keys, Issuer: issuerURL, Audience: audienceURL}
	// A Verifier may also get Cache: authn.NewTokenCache(0), so that a token
	// presented again skips the signature check; this demo checks every time.
	v := &authn.Verifier{Keys: keys, Issuer: issuerURL, Audience: audienceURL}

	srv := httptest.NewServer(newAPI(keys, v))
	defer srv.Close()

	get := func(path, token string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			return nil, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	show := func(label, path, token string) error {
		resp, body, err := get(path, token)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-12s GET %-17s -> %d ", label, path, resp.StatusCode)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			fmt.Fprintf(w, "WWW-Authenticate: %s\n", resp.Header.Get("WWW-Authenticate"))
		case strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json"):
			var p struct {
				Detail string `json:"detail"`
			}
			json.Unmarshal([]byte(body), &p)
			fmt.Fprintf(w, "problem: %s\n", p.Detail)
		default:
			fmt.Fprintln(w, body)
		}
		return nil
	}
	jwks := func() ([]string, error) {
		resp, body, err := get("/.well-known/jwks.json", "")
		if err != nil {
			return nil, err
		}
		var set struct {
			Keys []struct {
				KID string `json:"kid"`
				Alg string `json:"alg"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(body), &set); err != nil {
			return nil, err
		}
		kids := make([]string, len(set.Keys))
		for i, k := range set.Keys {
			kids[i] = k.KID
		}
		fmt.Fprintf(w, "JWKS: %d %s keys, Cache-Control: %s\n", len(kids), set.Keys[0].Alg, resp.Header.Get("Cache-Control"))
		return kids, nil
	}

	fmt.Fprintln(w, "== the public keys")
	if _, err := jwks(); err != nil {
		return err
	}

	fmt.Fprintln(w, "== tokens against the API")
	adminTok, _, err := iss.Issue(ctx, authn.Claims{Subject: adaID, TenantID: tenantID, Role: authn.RoleAdmin})
	if err != nil {
		return err
	}
	userTok, _, err := iss.Issue(ctx, authn.Claims{Subject: bobID, TenantID: tenantID, Role: authn.RoleUser})
	if err != nil {
		return err
	}
	for _, c := range []struct{ label, path, token string }{
		{"admin token", "/api/admin/report", adminTok},
		{"user token", "/api/me", userTok},
		{"user token", "/api/admin/report", userTok},
		{"no token", "/api/admin/report", ""},
		{"forged token", "/api/admin/report", forge(adminTok)},
	} {
		if err := show(c.label, c.path, c.token); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "== key rotation")
	oldKID := kid(adminTok)
	var nextKID string
	for _, k := range keys.Keys() {
		if k.State == authn.KeyNext {
			nextKID = k.ID
		}
	}
	// In production: no sooner than the JWKS max-age after the last
	// rotation, so that clients have seen the next key.
	if err := keys.Rotate(time.Now()); err != nil {
		return err
	}
	for _, k := range keys.Keys() {
		fmt.Fprintf(w, "key %s, signed the admin token: %v\n", k.State, k.ID == oldKID)
	}
	if err := show("old token", "/api/admin/report", adminTok); err != nil {
		return err
	}
	newTok, _, err := iss.Issue(ctx, authn.Claims{Subject: adaID, TenantID: tenantID, Role: authn.RoleAdmin})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "new token has a new kid: %v, the one published as next before the rotation: %v\n",
		kid(newTok) != oldKID, kid(newTok) == nextKID)
	if err := show("new token", "/api/admin/report", newTok); err != nil {
		return err
	}
	kids, err := jwks()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "JWKS lists the old kid: %v, the new kid: %v\n", slices.Contains(kids, oldKID), slices.Contains(kids, kid(newTok)))
	// Once every token of the retired key has expired (MaxTokenTTL plus
	// leeway), Prune drops it from the set and the JWKS.
	later := time.Now().Add(keys.Config().MaxTokenTTL + keys.Config().Leeway + time.Minute)
	fmt.Fprintf(w, "pruned after the longest token lifetime: %d key\n", len(keys.Prune(later)))
	return nil
}

// kid returns the kid of a token's JOSE header.
func kid(token string) string {
	header, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		KID string `json:"kid"`
	}
	json.Unmarshal(b, &h)
	return h.KID
}

// forge turns a token's role claim into "owner" without re-signing it.
func forge(token string) string {
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return token
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	claims["role"] = "owner"
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}
