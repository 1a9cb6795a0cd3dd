package server

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn/oidc/oidctest"
	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestSSOOneTimeCode: a login started with an allowed return_to ends with a
// redirect carrying a code, which the client exchanges once for tokens.
func TestSSOOneTimeCode(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		idp := oidctest.New(oidctest.Config{ClientID: "app", ClientSecret: "s", Subject: "x", Email: "eve@acme.test", EmailVerified: true})
		defer idp.Close()
		const app = "https://app.acme.test/sso/done?from=idp"
		problemOf(t, s.do("PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", owner.Access, map[string]any{
			"issuer": idp.URL, "client_id": "app", "client_secret": "s", "return_urls": []string{"javascript:alert(1)"},
		}), http.StatusUnprocessableEntity)
		s.must(http.StatusOK, "PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", owner.Access, map[string]any{
			"issuer": idp.URL, "client_id": "app", "client_secret": "s", "return_urls": []string{app},
		})

		// A return URL that is not allowed is refused before any redirect.
		resp, err := ssoBrowser(t).Get(s.ts.URL + "/api/auth/sso/acme/oidc/login/?return_to=" + url.QueryEscape("https://evil.test/"))
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, finish(t, resp), http.StatusBadRequest)

		c := ssoBrowser(t)
		var landed *url.URL
		c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "app.acme.test" {
				landed = r.URL
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err = c.Get(s.ts.URL + "/api/auth/sso/acme/oidc/login/?return_to=" + url.QueryEscape(app))
		if err != nil {
			t.Fatal(err)
		}
		if r := finish(t, resp); r.Status != http.StatusSeeOther || landed == nil {
			t.Fatalf("login ended with %d, not at the app: %s", r.Status, r.Body)
		}
		code := landed.Query().Get("code")
		if code == "" || landed.Query().Get("from") != "idp" || landed.Path != "/sso/done" {
			t.Fatalf("landed at %s", landed)
		}
		r := s.must(http.StatusOK, "POST", "/api/auth/sso-exchange/", "", map[string]any{"code": code})
		if email, tenant := s.profileOf(r); email != "eve@acme.test" || tenant != owner.TenantID {
			t.Fatalf("exchanged for %s in %s", email, tenant)
		}
		// Once only; unknown codes get the same answer.
		problemOf(t, s.do("POST", "/api/auth/sso-exchange/", "", map[string]any{"code": code}), http.StatusUnauthorized)
		problemOf(t, s.do("POST", "/api/auth/sso-exchange/", "", map[string]any{"code": "nope"}), http.StatusUnauthorized)
	})
}

func TestSSOKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := ssoKey(), ssoKey()
	tenant := uuid.New()
	before, err := parseSSOKeys(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := before.seal(tenant, ssoOIDC, []byte("secret"))
	if strings.Contains(sealed, base64.RawStdEncoding.EncodeToString([]byte("secret"))) {
		t.Fatal("sealed value shows the secret")
	}
	after, err := parseSSOKeys(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.open(tenant, ssoOIDC, sealed); err != nil || string(got) != "secret" {
		t.Fatalf("open with the old key second: %q, %v", got, err)
	}
	if _, err := after.open(uuid.New(), ssoOIDC, sealed); err == nil {
		t.Fatal("a secret moved to another tenant opens")
	}
	if _, err := after.open(tenant, ssoSAML, sealed); err == nil {
		t.Fatal("a secret moved to another kind opens")
	}
	resealed := after.seal(tenant, ssoOIDC, []byte("secret"))
	only, _ := parseSSOKeys(newKey)
	if got, err := only.open(tenant, ssoOIDC, resealed); err != nil || string(got) != "secret" {
		t.Fatalf("resealed under the new key: %q, %v", got, err)
	}
	if _, err := only.open(tenant, ssoOIDC, sealed); err == nil {
		t.Fatal("a secret sealed with a dropped key opens")
	}
	for _, bad := range []string{"short", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := parseSSOKeys(bad); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
