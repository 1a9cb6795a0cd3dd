package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

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
