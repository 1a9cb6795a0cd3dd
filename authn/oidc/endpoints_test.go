package oidc_test

import (
	"testing"

	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/oidc/oidctest"
)

func TestEndpoints(t *testing.T) {
	t.Parallel()
	p := oidctest.New(oidctest.Config{ClientID: "client-1", ClientSecret: "secret-1", Subject: "s", Email: "a@example.com", EmailVerified: true})
	defer p.Close()
	rp, err := oidc.New(t.Context(), oidc.Config{Issuer: p.URL, ClientID: "client-1", RedirectURL: "https://app.example.com/cb", CookieKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ep := rp.Endpoints()
	if ep.Issuer != p.URL || ep.Authorization == "" || ep.Token == "" || ep.JWKS == "" {
		t.Fatalf("endpoints %+v", ep)
	}
	for _, u := range []string{ep.Authorization, ep.Token, ep.JWKS} {
		if u[:len(p.URL)] != p.URL {
			t.Fatalf("endpoint %s not at the provider %s", u, p.URL)
		}
	}
}
