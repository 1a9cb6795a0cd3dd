package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saaskit/saaskit/authn/oidc/oidctest"
	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

// bareIDPMetadata is IdP metadata without a signing certificate.
const bareIDPMetadata = `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://bare.example.com">
<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://bare.example.com/sso"/>
</IDPSSODescriptor></EntityDescriptor>`

// metadataHost serves IdP metadata at /metadata (swappable), and broken
// answers at other paths.
type metadataHost struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
}

func newMetadataHost(t *testing.T, md []byte) *metadataHost {
	t.Helper()
	h := &metadataHost{}
	h.set(md)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(*h.body.Load())
	})
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><html><body>Sign in</body></html>"))
	})
	mux.HandleFunc("GET /nocert", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(bareIDPMetadata))
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<EntityDescriptor>"))
		w.Write([]byte(strings.Repeat(" ", 1<<20)))
	})
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

func (h *metadataHost) set(md []byte) { h.body.Store(&md) }

func storedSAML(t *testing.T, db *dbtest.DB) samlSettings {
	t.Helper()
	var c ssoConnection
	if err := db.DB.NewSelect().Model(&c).Where("kind = ?", ssoSAML).Scan(tenancy.System(context.Background())); err != nil {
		t.Fatal(err)
	}
	var cfg samlSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSSOSAMLMetadataURL(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "ada", Email: "ada@acme.test", Name: "Ada"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idp.Close()
		md := idp.Metadata() // validUntil differs at each call
		host := newMetadataHost(t, md)
		path := "/api/tenants/" + owner.TenantID + "/sso/saml/"

		// Exactly one of the XML and the URL.
		problemOf(t, s.do("PUT", path, owner.Access, map[string]any{}), http.StatusUnprocessableEntity)
		problemOf(t, s.do("PUT", path, owner.Access, map[string]any{
			"idp_metadata": string(idp.Metadata()), "idp_metadata_url": host.URL + "/metadata"}), http.StatusUnprocessableEntity)
		// Inline metadata without a signing certificate is refused too.
		p := problemOf(t, s.do("PUT", path, owner.Access, map[string]any{"idp_metadata": bareIDPMetadata}), http.StatusUnprocessableEntity)
		if !strings.Contains(problemText(p), "no signing certificate") {
			t.Fatalf("bare inline metadata: %v", p)
		}
		// Each bad URL is refused with the reason.
		for _, tc := range []struct{ url, reason string }{
			{host.URL + "/html", "not IdP metadata"},
			{host.URL + "/nocert", "no signing certificate"},
			{host.URL + "/big", "larger than 1048576 bytes"},
			{host.URL + "/missing", "HTTP status 404"},
			{"ftp://idp.example.com/metadata", "https or http URL"},
			{"http://127.0.0.1:1/metadata", "fetching the metadata failed"},
		} {
			p := problemOf(t, s.do("PUT", path, owner.Access, map[string]any{"idp_metadata_url": tc.url}), http.StatusUnprocessableEntity)
			if !strings.Contains(problemText(p), tc.reason) {
				t.Fatalf("%s: %v, want %q", tc.url, p, tc.reason)
			}
		}
		if r := s.must(http.StatusOK, "GET", "/api/tenants/"+owner.TenantID+"/sso/", owner.Access, nil); r.JSON()["saml"] != nil {
			t.Fatalf("a refused configuration was saved: %s", r.Body)
		}

		// A good URL: fetched, stored, and used for logins.
		r := s.must(http.StatusOK, "PUT", path, owner.Access, map[string]any{"idp_metadata_url": host.URL + "/metadata"})
		if v := r.JSON(); v["idp_metadata_url"] != host.URL+"/metadata" || v["idp_entity_id"] != idp.URL+"/metadata" {
			t.Fatalf("put answer: %s", r.Body)
		}
		if cfg := storedSAML(t, db); cfg.IDPMetadata != string(md) || cfg.IDPMetadataURL != host.URL+"/metadata" {
			t.Fatalf("stored %+v", cfg)
		}
		resp, err := http.Get(s.ts.URL + "/api/auth/sso/acme/saml/metadata/")
		if err != nil {
			t.Fatal(err)
		}
		if err := idp.Register(finish(t, resp).Body); err != nil {
			t.Fatal(err)
		}
		c := ssoBrowser(t)
		resp, err = c.Get(s.ts.URL + "/api/auth/sso/acme/saml/login/")
		if err != nil {
			t.Fatal(err)
		}
		if resp, err = samltest.Submit(c, resp); err != nil {
			t.Fatal(err)
		}
		if res := finish(t, resp); res.Status != http.StatusOK {
			t.Fatalf("login: %d %s", res.Status, res.Body)
		}
	})
}

func problemText(p map[string]any) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func TestSSOTestActions(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		owner := s.register("owner@acme.test", "Acme")
		user := s.addMember(owner, "plain@acme.test", "user")
		admin := s.addMember(owner, "admin@acme.test", "admin")
		base := "/api/tenants/" + owner.TenantID + "/sso/"

		// Nothing to test yet.
		problemOf(t, s.do("POST", base+"oidc/test/", owner.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("POST", base+"saml/test/", owner.Access, nil), http.StatusNotFound)

		// OIDC: discovery, reported; then the provider goes away.
		op := oidctest.New(oidctest.Config{ClientID: "app", ClientSecret: "s", Subject: "x", Email: "x@acme.test", EmailVerified: true})
		s.must(http.StatusOK, "PUT", base+"oidc/", owner.Access, map[string]any{"issuer": op.URL, "client_id": "app", "client_secret": "s"})
		problemOf(t, s.do("POST", base+"oidc/test/", user.Access, nil), http.StatusForbidden)
		var ores OIDCTestResult
		s.must(http.StatusOK, "POST", base+"oidc/test/", admin.Access, nil).decode(t, &ores)
		if !ores.OK || ores.Issuer != op.URL || ores.Endpoints == nil || ores.Endpoints.Token != op.URL+"/token" || ores.Endpoints.JWKS != op.URL+"/jwks" || ores.Error != "" {
			t.Fatalf("oidc test: %+v", ores)
		}
		op.Close()
		ores = OIDCTestResult{}
		s.must(http.StatusOK, "POST", base+"oidc/test/", owner.Access, nil).decode(t, &ores)
		if ores.OK || ores.Endpoints != nil || !strings.Contains(ores.Error, "OpenID discovery failed") {
			t.Fatalf("oidc test of a provider that is gone: %+v", ores)
		}

		// SAML by URL: the metadata is fetched again at each test.
		idp1, err := samltest.New(samltest.Config{User: samltest.User{NameID: "a", Email: "a@acme.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idp1.Close()
		md1 := idp1.Metadata()
		host := newMetadataHost(t, md1)
		s.must(http.StatusOK, "PUT", base+"saml/", owner.Access, map[string]any{"idp_metadata_url": host.URL + "/metadata"})
		problemOf(t, s.do("POST", base+"saml/test/", user.Access, nil), http.StatusForbidden)
		var sres SAMLTestResult
		s.must(http.StatusOK, "POST", base+"saml/test/", admin.Access, nil).decode(t, &sres)
		cert := idp1.Provider.Certificate
		if !sres.OK || sres.Refreshed || sres.IDPEntityID != idp1.URL+"/metadata" || len(sres.Certificates) != 1 ||
			!sres.Certificates[0].NotAfter.Equal(cert.NotAfter.UTC()) || !sres.Certificates[0].NotBefore.Equal(cert.NotBefore.UTC()) ||
			sres.Certificates[0].Expired || len(sres.SSOEndpoints) == 0 || sres.SSOEndpoints[0].Location != idp1.URL+"/sso" {
			t.Fatalf("saml test: %+v", sres)
		}

		// The IdP changed (new entity, new certificate): the test stores it.
		idp2, err := samltest.New(samltest.Config{User: samltest.User{NameID: "b", Email: "b@acme.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idp2.Close()
		md2 := idp2.Metadata()
		host.set(md2)
		sres = SAMLTestResult{}
		s.must(http.StatusOK, "POST", base+"saml/test/", owner.Access, nil).decode(t, &sres)
		if !sres.OK || !sres.Refreshed || sres.IDPEntityID != idp2.URL+"/metadata" {
			t.Fatalf("saml test after a change: %+v", sres)
		}
		if cfg := storedSAML(t, db); cfg.IDPMetadata != string(md2) || cfg.IDPEntityID != idp2.URL+"/metadata" {
			t.Fatalf("refreshed metadata not stored: %s", cfg.IDPEntityID)
		}
		if r := s.must(http.StatusOK, "GET", base, owner.Access, nil); !strings.Contains(string(r.Body), idp2.URL+"/metadata") {
			t.Fatalf("view after refresh: %s", r.Body)
		}

		// Broken metadata at the URL: reported, and the stored copy is kept.
		host.set([]byte("<html>maintenance</html>"))
		sres = SAMLTestResult{}
		s.must(http.StatusOK, "POST", base+"saml/test/", owner.Access, nil).decode(t, &sres)
		if sres.OK || sres.Refreshed || !strings.Contains(sres.Error, "not IdP metadata") {
			t.Fatalf("saml test of broken metadata: %+v", sres)
		}
		if cfg := storedSAML(t, db); cfg.IDPMetadata != string(md2) {
			t.Fatal("broken metadata replaced the stored copy")
		}

		// Inline metadata is parsed, never fetched.
		s.must(http.StatusOK, "PUT", base+"saml/", owner.Access, map[string]any{"idp_metadata": string(md1)})
		sres = SAMLTestResult{}
		s.must(http.StatusOK, "POST", base+"saml/test/", owner.Access, nil).decode(t, &sres)
		if !sres.OK || sres.Refreshed || sres.MetadataURL != "" || sres.IDPEntityID != idp1.URL+"/metadata" {
			t.Fatalf("saml test of inline metadata: %+v", sres)
		}
	})
}

// TestSSOSAMLReplayAcrossReplicas: an assertion accepted by one replica is
// refused by another on the same database.
func TestSSOSAMLReplayAcrossReplicas(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		key := ssoKey()
		const public = "https://sso.example.test"
		replica := func(c *Config) { c.SSOEncryptionKey, c.SSOPublicURL = key, public }
		a := newTestServer(t, db, replica)
		b := newTestServer(t, db, replica)
		owner := a.register("owner@acme.test", "Acme")
		idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "ada", Email: "ada@acme.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idp.Close()
		a.must(http.StatusOK, "PUT", "/api/tenants/"+owner.TenantID+"/sso/saml/", owner.Access, map[string]any{"idp_metadata": string(idp.Metadata())})
		resp, err := http.Get(b.ts.URL + "/api/auth/sso/acme/saml/metadata/")
		if err != nil {
			t.Fatal(err)
		}
		if err := idp.Register(finish(t, resp).Body); err != nil {
			t.Fatal(err)
		}

		// One browser starts a login at replica A and gets the IdP's form;
		// a copy of its cookies goes with the replayed copy of the form.
		c1 := ssoBrowser(t)
		resp, err = c1.Get(a.ts.URL + "/api/auth/sso/acme/saml/login/")
		if err != nil {
			t.Fatal(err)
		}
		page := finish(t, resp).Body
		action, fields, err := samltest.ParseForm(page)
		if err != nil {
			t.Fatalf("%v: %s", err, page)
		}
		acs := strings.TrimPrefix(action, public)
		if acs == action {
			t.Fatalf("form action %s is not at the public URL", action)
		}
		c2 := ssoBrowser(t)
		for _, srv := range []*testServer{a, b} {
			u, _ := url.Parse(srv.ts.URL + acs)
			c2.Jar.SetCookies(u, c1.Jar.Cookies(u))
		}

		resp, err = samltest.Post(c1, a.ts.URL+acs, fields)
		if err != nil {
			t.Fatal(err)
		}
		if r := finish(t, resp); r.Status != http.StatusOK {
			t.Fatalf("login at A: %d %s", r.Status, r.Body)
		}
		resp, err = samltest.Post(c2, b.ts.URL+acs, fields)
		if err != nil {
			t.Fatal(err)
		}
		p := problemOf(t, finish(t, resp), http.StatusUnauthorized)
		if d, _ := p["detail"].(string); !strings.Contains(d, "replayed") {
			t.Fatalf("replay at B: %v", p)
		}
		var n int
		if err := db.DB.NewSelect().Table("saml_assertions").ColumnExpr("count(*)").Scan(tenancy.System(context.Background()), &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d recorded assertions, want 1", n)
		}
	})
}

func TestDBReplayCacheExpiry(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newSSOServer(t, db)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		c := dbReplayCache{s: s.srv, now: func() time.Time { return now }}
		if err := c.Consume("id-1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := c.Consume("id-1", now.Add(time.Minute)); !errors.Is(err, saml.ErrReplayed) {
			t.Fatalf("second use: %v, want ErrReplayed", err)
		}
		if err := c.Consume("id-2", now.Add(time.Minute)); err != nil {
			t.Fatalf("another id: %v", err)
		}
		// Still refused within the clock skew after expiry; accepted (and
		// the old rows dropped) after it.
		now = now.Add(time.Minute + replaySkew - time.Second)
		if err := c.Consume("id-1", now.Add(time.Minute)); !errors.Is(err, saml.ErrReplayed) {
			t.Fatalf("within the skew: %v, want ErrReplayed", err)
		}
		now = now.Add(2 * time.Second)
		if err := c.Consume("id-1", now.Add(time.Minute)); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
		var n int
		if err := db.DB.NewSelect().Table("saml_assertions").ColumnExpr("count(*)").Scan(tenancy.System(context.Background()), &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d rows, want 1 (expired ones dropped)", n)
		}
	})
}
