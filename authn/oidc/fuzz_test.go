package oidc_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/oidc/oidctest"
)

// FuzzFinish sends arbitrary login cookies and callback queries: Finish
// must refuse each one without panicking (a forged cookie never verifies,
// so no request reaches the provider).
func FuzzFinish(f *testing.F) {
	idp := oidctest.New(oidctest.Config{ClientID: "c", ClientSecret: "s", Email: "a@example.com", EmailVerified: true})
	defer idp.Close()
	rp, err := oidc.New(f.Context(), oidc.Config{Issuer: idp.URL, ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/cb", CookieKey: testKey})
	if err != nil {
		f.Fatal(err)
	}
	// A real cookie and state, as seeds.
	rec := httptest.NewRecorder()
	u, err := rp.Start(rec, httptest.NewRequest("GET", "/login", nil))
	if err != nil {
		f.Fatal(err)
	}
	pu, _ := url.Parse(u)
	cookie := rec.Result().Cookies()[0].Value
	f.Add(cookie+"x", "state="+pu.Query().Get("state")+"&code=abc")
	f.Add("e30.AAAA", "state=&code=")
	f.Add("", "error=access_denied")
	f.Fuzz(func(t *testing.T, cookieValue, query string) {
		r := httptest.NewRequest("GET", "/cb", nil)
		r.URL.RawQuery = query
		if cookieValue != "" {
			r.AddCookie(&http.Cookie{Name: oidc.DefaultCookieName, Value: url.QueryEscape(cookieValue)})
		}
		if id, err := rp.Finish(httptest.NewRecorder(), r); err == nil {
			t.Fatalf("accepted %q %q as %+v", cookieValue, query, id)
		}
	})
}
