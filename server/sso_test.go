package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/authn/oidc/oidctest"
	"github.com/saaskit/saaskit/authn/saml/samltest"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

func ssoKey() string {
	return base64.StdEncoding.EncodeToString([]byte(rand.Text() + rand.Text())[:32])
}

func newSSOServer(t *testing.T, db *dbtest.DB) *testServer {
	t.Helper()
	return newTestServer(t, db, func(c *Config) { c.SSOEncryptionKey = ssoKey() })
}

func ssoBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// finish reads the final answer of a browser login.
func finish(t *testing.T, resp *http.Response) *response {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// ssoMemberRoles lists the tenant's members as email → role.
func (s *testServer) ssoMemberRoles(admin session) map[string]string {
	s.t.Helper()
	var p struct {
		Items []struct {
			Email string `json:"email"`
			Role  string `json:"role"`
		} `json:"items"`
	}
	s.must(http.StatusOK, "GET", "/api/users/?limit=100", admin.Access, nil).decode(s.t, &p)
	out := map[string]string{}
	for _, m := range p.Items {
		out[m.Email] = m.Role
	}
	return out
}

func (s *testServer) ssoAuditActions(admin session, action string) []map[string]any {
	s.t.Helper()
	var p struct {
		Items []map[string]any `json:"items"`
	}
	s.must(http.StatusOK, "GET", "/api/audit/logs/?limit=100&action="+action, admin.Access, nil).decode(s.t, &p)
	return p.Items
}

// profileOf returns the email and role the access token of a login says.
func (s *testServer) profileOf(r *response) (email, tenant string) {
	s.t.Helper()
	var pair TokenPair
	r.decode(s.t, &pair)
	if pair.Access == "" || pair.Refresh == "" || pair.TokenType != "Bearer" {
		s.t.Fatalf("not a token pair: %s", r.Body)
	}
	var p struct {
		Email  string `json:"email"`
		Tenant *struct {
			ID string `json:"id"`
		} `json:"tenant"`
	}
	s.must(http.StatusOK, "GET", "/api/auth/profile/", pair.Access, nil).decode(s.t, &p)
	if p.Tenant != nil {
		tenant = p.Tenant.ID
	}
	// The refresh token works as a password login's does.
	s.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": pair.Refresh})
	return p.Email, tenant
}

func TestSSOOIDC(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		other := s.register("stranger@acme.test", "Other")
		user := s.addMember(owner, "plain@acme.test", "user")
		const secret = "client-secret-never-shown"
		idpCfg := oidctest.Config{ClientID: "acme-app", ClientSecret: secret,
			Subject: "sub-1", Email: "New.Person@acme.test", Name: "New Person", EmailVerified: true}
		idp := oidctest.New(idpCfg)
		defer idp.Close()
		body := map[string]any{"issuer": idp.URL, "client_id": "acme-app", "client_secret": secret,
			"allowed_domains": []string{"acme.test"}, "default_role": "user"}

		// Admins and owners only; the secret never comes back.
		problemOf(t, s.do("PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", user.Access, body), http.StatusForbidden)
		problemOf(t, s.do("PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", other.Access, body), http.StatusNotFound)
		r := s.must(http.StatusOK, "PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", owner.Access, body)
		if strings.Contains(string(r.Body), secret) || r.JSON()["has_client_secret"] != true {
			t.Fatalf("put answer: %s", r.Body)
		}
		r = s.must(http.StatusOK, "GET", "/api/tenants/"+owner.TenantID+"/sso/", owner.Access, nil)
		if strings.Contains(string(r.Body), secret) || r.JSON()["oidc"] == nil || r.JSON()["saml"] != nil {
			t.Fatalf("get answer: %s", r.Body)
		}
		// At rest, the secret is sealed.
		var stored []ssoConnection
		if err := db.DB.NewSelect().Model(&stored).Scan(tenancy.System(context.Background())); err != nil {
			t.Fatal(err)
		}
		if len(stored) != 1 || strings.Contains(stored[0].Secret, secret) || strings.Contains(stored[0].Config, secret) || stored[0].Secret == "" {
			t.Fatalf("stored connection: %+v", stored)
		}
		// A provider that does not answer discovery is refused.
		bad := map[string]any{"issuer": idp.URL + "/nowhere", "client_id": "x", "client_secret": "y"}
		problemOf(t, s.do("PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", owner.Access, bad), http.StatusUnprocessableEntity)

		// A new user is provisioned just in time, by slug or id.
		login := s.ts.URL + "/api/auth/sso/acme/oidc/login/"
		resp, err := ssoBrowser(t).Get(login)
		if err != nil {
			t.Fatal(err)
		}
		res := finish(t, resp)
		if res.Status != http.StatusOK {
			t.Fatalf("login: %d %s", res.Status, res.Body)
		}
		if email, tenant := s.profileOf(res); email != "new.person@acme.test" || tenant != owner.TenantID {
			t.Fatalf("logged in as %s in %s", email, tenant)
		}
		if roles := s.ssoMemberRoles(owner); roles["new.person@acme.test"] != "user" {
			t.Fatalf("members: %v", roles)
		}
		if n := len(s.ssoAuditActions(owner, ActionSSOLogin)); n != 1 {
			t.Fatalf("%d sso login events", n)
		}

		// The same person again is linked, not created twice.
		resp, err = ssoBrowser(t).Get(s.ts.URL + "/api/auth/sso/" + owner.TenantID + "/oidc/login/")
		if err != nil {
			t.Fatal(err)
		}
		if res := finish(t, resp); res.Status != http.StatusOK {
			t.Fatalf("second login: %d %s", res.Status, res.Body)
		}
		if n := len(s.ssoMemberRoles(owner)); n != 3 {
			t.Fatalf("%d members after a second login, want 3", n)
		}
	})
}

// TestSSOOIDCRefused: each refusal is a clear problem, and creates no member.
func TestSSOOIDCRefused(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		s.register("stranger@acme.test", "Other") // a user of another tenant
		for _, tc := range []struct {
			name   string
			edit   func(*oidctest.Config)
			domain string
			status int
			reason string
		}{
			{"unverified email", func(c *oidctest.Config) { c.EmailVerified = false }, "", 401, "email not verified"},
			{"domain not allowed", nil, "corp.test", 401, "email domain not allowed"},
			{"state mismatch", func(c *oidctest.Config) { c.State = "forged" }, "", 401, "state mismatch"},
			{"nonce mismatch", func(c *oidctest.Config) { c.Nonce = "other" }, "", 401, "nonce mismatch"},
			{"wrong audience", func(c *oidctest.Config) { c.Audience = "someone-else" }, "", 401, "ID token invalid"},
			{"user of another tenant", func(c *oidctest.Config) { c.Email = "stranger@acme.test" }, "", 403, "an account with this email exists"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := oidctest.Config{ClientID: "app", ClientSecret: "s", Subject: "x", Email: "someone@acme.test", EmailVerified: true}
				if tc.edit != nil {
					tc.edit(&cfg)
				}
				idp := oidctest.New(cfg)
				defer idp.Close()
				body := map[string]any{"issuer": idp.URL, "client_id": "app", "client_secret": "s"}
				if tc.domain != "" {
					body["allowed_domains"] = []string{tc.domain}
				}
				s.must(http.StatusOK, "PUT", "/api/tenants/"+owner.TenantID+"/sso/oidc/", owner.Access, body)
				resp, err := ssoBrowser(t).Get(s.ts.URL + "/api/auth/sso/acme/oidc/login/")
				if err != nil {
					t.Fatal(err)
				}
				p := problemOf(t, finish(t, resp), tc.status)
				if d, _ := p["detail"].(string); !strings.Contains(d, tc.reason) {
					t.Fatalf("detail %q, want it to mention %q", d, tc.reason)
				}
				if n := len(s.ssoMemberRoles(owner)); n != 1 {
					t.Fatalf("%d members after a refused login", n)
				}
			})
		}
		if n := len(s.ssoAuditActions(owner, ActionSSOLoginFailed)); n != 6 {
			t.Fatalf("%d failed sso login events, want 6", n)
		}
	})
}

func TestSSOSAML(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		acme := s.register("owner@acme.test", "Acme")
		beta := s.register("owner@beta.test", "Beta")
		idpA, err := samltest.New(samltest.Config{User: samltest.User{NameID: "ada", Email: "ada@acme.test", Name: "Ada", Groups: []string{"admins"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer idpA.Close()
		idpB, err := samltest.New(samltest.Config{User: samltest.User{NameID: "bob", Email: "bob@beta.test", Name: "Bob"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idpB.Close()

		setUp := func(owner session, slug string, idp *samltest.IdP) {
			r := s.must(http.StatusOK, "PUT", "/api/tenants/"+owner.TenantID+"/sso/saml/", owner.Access, map[string]any{
				"idp_metadata": string(idp.Metadata()), "role_map": map[string]string{"admins": "admin"},
			})
			if strings.Contains(string(r.Body), "PRIVATE KEY") || !strings.Contains(string(r.Body), "BEGIN CERTIFICATE") {
				t.Fatalf("put answer: %s", r.Body)
			}
			resp, err := http.Get(s.ts.URL + "/api/auth/sso/" + slug + "/saml/metadata/")
			if err != nil {
				t.Fatal(err)
			}
			md := finish(t, resp)
			if md.Status != http.StatusOK {
				t.Fatalf("metadata: %d %s", md.Status, md.Body)
			}
			if err := idp.Register(md.Body); err != nil {
				t.Fatal(err)
			}
		}
		setUp(acme, "acme", idpA)
		setUp(beta, "beta", idpB)

		// A full login: redirected to the IdP, its form posted to the ACS.
		c := ssoBrowser(t)
		resp, err := c.Get(s.ts.URL + "/api/auth/sso/acme/saml/login/")
		if err != nil {
			t.Fatal(err)
		}
		resp, err = samltest.Submit(c, resp)
		if err != nil {
			t.Fatal(err)
		}
		res := finish(t, resp)
		if res.Status != http.StatusOK {
			t.Fatalf("login: %d %s", res.Status, res.Body)
		}
		if email, tenant := s.profileOf(res); email != "ada@acme.test" || tenant != acme.TenantID {
			t.Fatalf("logged in as %s in %s", email, tenant)
		}
		if roles := s.ssoMemberRoles(acme); roles["ada@acme.test"] != "admin" {
			t.Fatalf("mapped role: %v", roles)
		}

		// Tenant A's IdP, even when it knows B's SP, does not log in at B.
		md, err := http.Get(s.ts.URL + "/api/auth/sso/beta/saml/metadata/")
		if err != nil {
			t.Fatal(err)
		}
		if err := idpA.Register(finish(t, md).Body); err != nil {
			t.Fatal(err)
		}
		c = ssoBrowser(t)
		c.Get(s.ts.URL + "/api/auth/sso/beta/saml/login/") // B's login pending in this browser
		resp, err = c.Get(idpA.URL + "/initiate?sp=" + url.QueryEscape(s.ts.URL+"/api/auth/sso/"+beta.TenantID+"/saml/metadata/"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = samltest.Submit(c, resp)
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, finish(t, resp), http.StatusUnauthorized)

		// A replayed response is refused.
		c = ssoBrowser(t)
		resp, err = c.Get(s.ts.URL + "/api/auth/sso/beta/saml/login/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		action, fields, err := samltest.ParseForm(page)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = samltest.Post(c, action, fields)
		if err != nil {
			t.Fatal(err)
		}
		if r := finish(t, resp); r.Status != http.StatusOK {
			t.Fatalf("beta login: %d %s", r.Status, r.Body)
		}
		resp, err = samltest.Post(c, action, fields)
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, finish(t, resp), http.StatusUnauthorized)

		if roles := s.ssoMemberRoles(beta); len(roles) != 2 || roles["bob@beta.test"] != "user" || roles["ada@acme.test"] != "" {
			t.Fatalf("beta members: %v", roles)
		}
		var failed []map[string]any
		failed = s.ssoAuditActions(beta, ActionSSOLoginFailed)
		if len(failed) != 2 {
			t.Fatalf("%d failed logins recorded at beta, want 2", len(failed))
		}

		// Removing the connection stops its logins.
		s.must(http.StatusNoContent, "DELETE", "/api/tenants/"+beta.TenantID+"/sso/saml/", beta.Access, nil)
		resp, err = http.Get(s.ts.URL + "/api/auth/sso/beta/saml/login/")
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, finish(t, resp), http.StatusNotFound)
	})
}

func TestSSODisabled(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		problemOf(t, s.do("GET", "/api/tenants/"+owner.TenantID+"/sso/", owner.Access, nil), http.StatusServiceUnavailable)
		resp, err := http.Get(s.ts.URL + "/api/auth/sso/acme/oidc/login/")
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, finish(t, resp), http.StatusServiceUnavailable)
	})
}
