package oidc_test

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/oidc/oidctest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// app is a relying party served over HTTP: /login starts a login, /callback
// finishes it and hands the result to the test.
type app struct {
	srv    *httptest.Server
	rp     atomic.Pointer[oidc.RelyingParty]
	result chan result
}

type result struct {
	id  *oidc.Identity
	err error
}

func newApp(t *testing.T, p *oidctest.Provider, edit func(*oidc.Config)) *app {
	t.Helper()
	a := &app{result: make(chan result, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		u, err := a.rp.Load().Start(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		id, err := a.rp.Load().Finish(w, r)
		a.result <- result{id, err}
		w.WriteHeader(http.StatusNoContent)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	cfg := oidc.Config{
		Issuer: p.URL, ClientID: "client-1", ClientSecret: "secret-1",
		RedirectURL: a.srv.URL + "/callback", CookieKey: testKey,
	}
	if edit != nil {
		edit(&cfg)
	}
	rp, err := oidc.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.rp.Store(rp)
	return a
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// run logs in through the app with c and returns what /callback got.
func (a *app) run(t *testing.T, c *http.Client) result {
	t.Helper()
	resp, err := c.Get(a.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return <-a.result
}

func provider(t *testing.T, edit func(*oidctest.Config)) *oidctest.Provider {
	t.Helper()
	cfg := oidctest.Config{
		ClientID: "client-1", ClientSecret: "secret-1",
		Subject: "user-42", Email: "Ada@Example.com", Name: "Ada Lovelace", EmailVerified: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	p := oidctest.New(cfg)
	t.Cleanup(p.Close)
	return p
}

func TestLogin(t *testing.T) {
	t.Parallel()
	p := provider(t, nil)
	a := newApp(t, p, func(c *oidc.Config) { c.AllowedDomains = []string{"example.com"} })
	c := browser(t)
	res := a.run(t, c)
	if res.err != nil {
		t.Fatal(res.err)
	}
	want := oidc.Identity{Issuer: p.URL, Subject: "user-42", Email: "Ada@Example.com", EmailVerified: true, Name: "Ada Lovelace"}
	if *res.id != want {
		t.Fatalf("identity = %+v, want %+v", *res.id, want)
	}
	// The login cookie is cleared: a second callback with the same URL fails.
	for _, ck := range c.Jar.Cookies(mustURL(t, a.srv.URL+"/callback")) {
		if ck.Name == oidc.DefaultCookieName {
			t.Fatalf("login cookie still set after the callback")
		}
	}
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider func(*oidctest.Config)
		rp       func(*oidc.Config)
		want     error
		contains string
	}{
		{name: "state mismatch", provider: func(c *oidctest.Config) { c.State = "forged" }, want: oidc.ErrStateMismatch},
		{name: "nonce mismatch", provider: func(c *oidctest.Config) { c.Nonce = "replayed" }, want: oidc.ErrNonceMismatch},
		{name: "wrong audience", provider: func(c *oidctest.Config) { c.Audience = "client-2" }, want: oidc.ErrTokenInvalid, contains: "audience"},
		{name: "unverified email", provider: func(c *oidctest.Config) { c.EmailVerified = false }, want: oidc.ErrEmailNotVerified},
		{name: "no email", provider: func(c *oidctest.Config) { c.Email = "" }, want: oidc.ErrEmailNotVerified},
		{name: "domain not allowed", rp: func(c *oidc.Config) { c.AllowedDomains = []string{"corp.example"} }, want: oidc.ErrDomainNotAllowed},
		{name: "access denied", provider: func(c *oidctest.Config) { c.Error = "access_denied" }, want: oidc.ErrProviderError, contains: "access_denied"},
		{name: "wrong client secret", rp: func(c *oidc.Config) { c.ClientSecret = "nope" }, want: oidc.ErrExchange},
		{name: "expired token", provider: func(c *oidctest.Config) {
			c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		}, want: oidc.ErrTokenInvalid, contains: "expired"},
		{name: "login timed out", rp: func(c *oidc.Config) {
			var calls atomic.Int32 // Start reads the clock once; later reads are 11 minutes on
			c.Now = func() time.Time {
				if calls.Add(1) == 1 {
					return time.Now()
				}
				return time.Now().Add(oidc.DefaultLoginTimeout + time.Minute)
			}
		}, want: oidc.ErrMissingState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, provider(t, tt.provider), tt.rp)
			res := a.run(t, browser(t))
			if !errors.Is(res.err, tt.want) {
				t.Fatalf("err = %v, want %v", res.err, tt.want)
			}
			if !strings.Contains(res.err.Error(), tt.contains) {
				t.Fatalf("err = %v, want it to mention %q", res.err, tt.contains)
			}
			if res.id != nil {
				t.Fatalf("identity %+v returned with an error", res.id)
			}
		})
	}
}

// TestCookieBoundToProvider: a login cookie made for one provider
// configuration is refused by another, and a callback without a cookie is
// refused.
func TestCookieBoundToProvider(t *testing.T) {
	t.Parallel()
	p := provider(t, nil)
	a := newApp(t, p, nil)
	b := newApp(t, p, func(c *oidc.Config) { c.ClientID = "client-other" })

	c := browser(t)
	rec := httptest.NewRecorder()
	authURL, err := a.rp.Load().Start(rec, httptest.NewRequest("GET", a.srv.URL+"/login", nil))
	if err != nil {
		t.Fatal(err)
	}
	state := mustURL(t, authURL).Query().Get("state")
	cb := httptest.NewRequest("GET", "/callback?code=x&state="+state, nil)
	for _, ck := range rec.Result().Cookies() {
		cb.AddCookie(ck)
	}
	if _, err := b.rp.Load().Finish(httptest.NewRecorder(), cb); !errors.Is(err, oidc.ErrMissingState) {
		t.Fatalf("cookie of another configuration: err = %v, want ErrMissingState", err)
	}

	resp, err := c.Get(a.srv.URL + "/callback?code=x&state=" + state)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res := <-a.result; !errors.Is(res.err, oidc.ErrMissingState) {
		t.Fatalf("callback without cookie: err = %v, want ErrMissingState", res.err)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	p := provider(t, nil)
	for _, cfg := range []oidc.Config{
		{ClientID: "c", RedirectURL: "http://x/cb", CookieKey: testKey},
		{Issuer: p.URL, RedirectURL: "http://x/cb", CookieKey: testKey},
		{Issuer: p.URL, ClientID: "c", CookieKey: testKey},
		{Issuer: p.URL, ClientID: "c", RedirectURL: "http://x/cb", CookieKey: []byte("short")},
		{Issuer: p.URL + "/nowhere", ClientID: "c", RedirectURL: "http://x/cb", CookieKey: testKey},
	} {
		if _, err := oidc.New(t.Context(), cfg); !errors.Is(err, oidc.ErrConfig) {
			t.Errorf("New(%+v) err = %v, want ErrConfig", cfg, err)
		}
	}
}
