package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// riverUIServer is a test server whose /admin/riverui/ is served by a River
// UI mounted with mountRiverUI on a mux of the test's own, in front of the
// server's handler.
func riverUIServer(t *testing.T, db *dbtest.DB) *testServer {
	t.Helper()
	s := newTestServer(t, db, func(c *Config) { c.TrustedProxies = "127.0.0.1/32,::1/128" })
	mux := http.NewServeMux()
	if err := s.srv.mountRiverUI(t.Context(), mux); err != nil {
		t.Fatalf("mountRiverUI: %v", err)
	}
	t.Cleanup(s.srv.closeRiverUI)
	mux.Handle("/", s.srv.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &testServer{t: t, srv: s.srv, ts: ts, db: db}
}

// adminCookie finds the admin session cookie in r's Set-Cookie fields.
func adminCookie(t *testing.T, r *response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == adminCookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", adminCookieName, r.Header["Set-Cookie"])
	return nil
}

func withCookie(c *http.Cookie, kv ...string) http.Header {
	h := http.Header{"Cookie": {c.Name + "=" + c.Value}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestRiverUIAccess(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := riverUIServer(t, db)
		owner := s.register("owner@riverui.example.com", "RiverUI")
		if _, err := s.srv.CreateSuperuser(t.Context(), "root@riverui.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		root := s.login("root@riverui.example.com", "")

		// No credentials: 401 with a challenge that names the session.
		for _, path := range []string{"/admin/riverui/", "/admin/riverui/api/jobs"} {
			r := s.do("GET", path, "", nil)
			p := problemOf(t, r, http.StatusUnauthorized)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(p["detail"].(string), adminSessionPath) {
				t.Errorf("GET %s anonymous: %v %v", path, r.Header.Get("WWW-Authenticate"), p)
			}
		}
		problemOf(t, s.do("POST", adminSessionPath, "", nil), http.StatusUnauthorized)
		bad := &http.Cookie{Name: adminCookieName, Value: "not-a-token"}
		if p := problemOf(t, s.doH("GET", "/admin/riverui/", "", nil, withCookie(bad)), http.StatusUnauthorized); !strings.Contains(p["detail"].(string), "invalid token") {
			t.Errorf("bad cookie: %v", p)
		}

		// A tenant owner is not a platform operator: 403, by header or by
		// a session it cannot open.
		problemOf(t, s.do("GET", "/admin/riverui/", owner.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("GET", "/admin/riverui/api/jobs", owner.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("POST", adminSessionPath, owner.Access, nil), http.StatusForbidden)
		ownerCookie := &http.Cookie{Name: adminCookieName, Value: owner.Access}
		problemOf(t, s.doH("GET", "/admin/riverui/", "", nil, withCookie(ownerCookie)), http.StatusForbidden)

		// The superadmin opens a session: a cookie holding the token,
		// HttpOnly, SameSite=Strict, for /admin/ only, ending with the token.
		r := s.must(http.StatusOK, "POST", adminSessionPath, root.Access, nil)
		var view AdminSessionView
		r.decode(t, &view)
		c := adminCookie(t, r)
		if c.Value != root.Access || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != adminCookiePath ||
			c.Secure || c.MaxAge <= 0 || c.MaxAge > int(s.srv.cfg.AccessTokenTTL/time.Second)+1 {
			t.Errorf("session cookie %+v", c)
		}
		if view.ExpiresAt.IsZero() || view.ExpiresAt.Sub(time.Now()) > s.srv.cfg.AccessTokenTTL+time.Minute {
			t.Errorf("session expires at %v", view.ExpiresAt)
		}
		if strings.Contains(r.Header.Get("Cache-Control"), "store") == false {
			t.Errorf("session answer is cacheable: %q", r.Header.Get("Cache-Control"))
		}
		// Behind a trusted proxy that terminated TLS, the cookie is Secure.
		r = s.doH("POST", adminSessionPath, root.Access, nil, http.Header{"X-Forwarded-Proto": {"https"}})
		if sc := adminCookie(t, r); r.Status != http.StatusOK || !sc.Secure {
			t.Errorf("session over https: %d, cookie %+v", r.Status, sc)
		}
		// The cookie is no credential for the API.
		problemOf(t, s.doH("GET", "/api/tenants/", "", nil, withCookie(c)), http.StatusUnauthorized)

		if !db.IsPostgres() {
			if view.RiverUI != "" {
				t.Errorf("river_ui = %q on SQLite", view.RiverUI)
			}
			for _, h := range []http.Header{withCookie(c), {"Authorization": {"Bearer " + root.Access}}} {
				p := problemOf(t, s.doH("GET", "/admin/riverui/", "", nil, h), http.StatusNotFound)
				d := p["detail"].(string)
				if !strings.Contains(d, "Postgres") || !strings.Contains(d, "/api/integrations/events/") || !strings.Contains(d, "/replay/") {
					t.Errorf("SQLite answer: %v", p)
				}
			}
		} else {
			if view.RiverUI != riverUIPrefix+"/" {
				t.Errorf("river_ui = %q", view.RiverUI)
			}
			checkRiverUIPages(t, s, c, root)
		}

		// Closing the session drops the cookie.
		r = s.must(http.StatusNoContent, "DELETE", adminSessionPath, "", nil)
		if gone := adminCookie(t, r); gone.MaxAge >= 0 || gone.Value != "" || gone.Path != adminCookiePath {
			t.Errorf("logout cookie %+v", gone)
		}
	})
}

// checkRiverUIPages opens the UI and its API with the session cookie and
// finds a job the test inserted.
func checkRiverUIPages(t *testing.T, s *testServer, c *http.Cookie, root session) {
	t.Helper()
	eventID := uuid.Must(uuid.NewV7())
	res, err := s.srv.integ.jobs.Insert(t.Context(), webhookJobArgs{EventID: eventID, TenantID: uuid.Must(uuid.NewV7())}, nil)
	if err != nil {
		t.Fatal(err)
	}

	r := s.doH("GET", "/admin/riverui/", "", nil, withCookie(c, "Accept", "text/html"))
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.Body), "<title>River</title>") || !strings.Contains(string(r.Body), riverUIPrefix+"/api") {
		t.Fatalf("UI page: %d %s %.300s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	// The page's script is served under the prefix too.
	m := regexp.MustCompile(`src="(` + regexp.QuoteMeta(riverUIPrefix) + `/assets/[^"]+\.js)"`).FindStringSubmatch(string(r.Body))
	if m == nil {
		t.Fatalf("no script in the UI page: %.1000s", r.Body)
	}
	if js := s.doH("GET", m[1], "", nil, withCookie(c)); js.Status != http.StatusOK || len(js.Body) < 1000 {
		t.Errorf("script %s: %d, %d bytes", m[1], js.Status, len(js.Body))
	}

	// The jobs API, with the cookie and with a Bearer header.
	for _, h := range []http.Header{withCookie(c), {"Authorization": {"Bearer " + root.Access}}} {
		r = s.doH("GET", "/admin/riverui/api/jobs?state=available&limit=100", "", nil, h)
		if r.Status != http.StatusOK {
			t.Fatalf("jobs list: %d %s", r.Status, r.Body)
		}
		var list struct {
			Data []struct {
				ID   int64           `json:"id"`
				Kind string          `json:"kind"`
				Args json.RawMessage `json:"args"`
			} `json:"data"`
		}
		r.decode(t, &list)
		found := false
		for _, j := range list.Data {
			if j.ID == res.Job.ID && j.Kind == (webhookJobArgs{}).Kind() && strings.Contains(string(j.Args), eventID.String()) {
				found = true
			}
		}
		if !found {
			t.Errorf("job %d not in the list: %s", res.Job.ID, r.Body)
		}
	}
	r = s.doH("GET", "/admin/riverui/api/states", "", nil, withCookie(c))
	if r.Status != http.StatusOK || r.JSON()["available"] == nil {
		t.Errorf("states: %d %s", r.Status, r.Body)
	}

	// A change sent from another site is refused even with the cookie
	// (which SameSite=Strict would not send anyway).
	cancel := `{"ids":["` + jsonNumber(res.Job.ID) + `"]}`
	r = s.doH("POST", "/admin/riverui/api/jobs/cancel", "", cancel,
		withCookie(c, "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json"))
	problemOf(t, r, http.StatusForbidden)
	// From the UI's own pages it goes through.
	r = s.doH("POST", "/admin/riverui/api/jobs/cancel", "", cancel,
		withCookie(c, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"))
	if r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	r = s.doH("GET", "/admin/riverui/api/jobs/"+jsonNumber(res.Job.ID), "", nil, withCookie(c))
	if r.Status != http.StatusOK || r.JSON()["state"] != "cancelled" {
		t.Errorf("job after cancel: %d %s", r.Status, r.Body)
	}

	// Once closed, the UI answers 503 instead of using a closed pool.
	s.srv.closeRiverUI()
	problemOf(t, s.doH("GET", "/admin/riverui/api/jobs", "", nil, withCookie(c)), http.StatusServiceUnavailable)
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
