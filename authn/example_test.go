package authn_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
)

func Example() {
	ctx := context.Background()
	keys := authn.NewKeySet(authn.KeySetConfig{})
	if err := keys.Rotate(time.Now()); err != nil { // the first active key, and the next one
		panic(err)
	}
	iss := &authn.Issuer{Keys: keys, Issuer: "https://auth.example.com", Audience: "https://api.example.com"}
	v := &authn.Verifier{Keys: keys, Issuer: iss.Issuer, Audience: iss.Audience, Cache: authn.NewTokenCache(0)}

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authn.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "hello %s, %s", p.UserID, p.Role)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", authn.JWKSHandler(keys, 5*time.Minute))
	mux.Handle("/api/", authn.Middleware(v)(authn.Require(authn.RoleAdmin)(api)))

	user := uuid.MustParse("0190f1c2-0000-7000-8000-000000000001")
	token, _, err := iss.Issue(ctx, authn.Claims{Subject: user, TenantID: uuid.New(), Role: authn.RoleOwner})
	if err != nil {
		panic(err)
	}
	for _, auth := range []string{"Bearer " + token, "", "Bearer not-a-jwt"} {
		req := httptest.NewRequest("GET", "/api/things", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Header().Get("WWW-Authenticate"))))
		if rec.Code == 200 {
			fmt.Println(rec.Body)
		}
	}
	// Output:
	// 200
	// hello 0190f1c2-0000-7000-8000-000000000001, owner
	// 401 Bearer realm="saaskit"
	// 401 Bearer realm="saaskit", error="invalid_token", error_description="the access token is malformed"
}

func ExampleHasher() {
	ctx := context.Background()
	var h authn.Hasher // argon2id, OWASP parameters
	if err := authn.ValidatePassword("password123"); err != nil {
		fmt.Println(err)
	}
	phc, _ := h.Hash(ctx, "correct horse battery staple")
	fmt.Println(phc[:31])
	ok, needsRehash, _ := h.Verify(ctx, "correct horse battery staple", phc)
	fmt.Println(ok, needsRehash)
	_, _, err := h.Verify(ctx, "wrong", phc)
	fmt.Println(errors.Is(err, authn.ErrPasswordMismatch))
	// Output:
	// authn: password too common
	// $argon2id$v=19$m=19456,t=2,p=1$
	// true false
	// true
}

func ExampleAuthorize() {
	ctx := authn.WithPrincipal(context.Background(), &authn.Principal{
		UserID: uuid.New(), TenantID: uuid.New(), Role: authn.RoleAdmin,
	})
	fmt.Println(authn.Authorize(ctx, authn.RoleAdmin))
	fmt.Println(authn.Authorize(ctx, authn.RoleOwner))
	fmt.Println(authn.Authorize(context.Background(), authn.RoleUser))
	// Output:
	// <nil>
	// authn: forbidden: role "admin" is below "owner"
	// authn: unauthenticated
}

func ExampleKeySet_Rotate() {
	keys := authn.NewKeySet(authn.KeySetConfig{})
	now := time.Now()
	keys.Rotate(now)
	keys.Rotate(now.Add(24 * time.Hour))
	for _, k := range keys.Keys() {
		fmt.Println(k.Algorithm, k.State)
	}
	fmt.Println(len(keys.JWKS().Keys), "keys published")
	fmt.Println(len(keys.Prune(now.Add(25*time.Hour))), "pruned")
	// Output:
	// EdDSA active
	// EdDSA next
	// EdDSA retired
	// 3 keys published
	// 1 pruned
}
