package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

func TestResolvers(t *testing.T) {
	t.Parallel()
	type claimKey struct{}
	claim := tenancy.ClaimResolver(func(ctx context.Context) (string, bool) {
		v, ok := ctx.Value(claimKey{}).(string)
		return v, ok
	})
	req := func(url string, hdr ...string) *http.Request {
		r := httptest.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	withClaim := req("http://api.example.com/")
	withClaim = withClaim.WithContext(context.WithValue(withClaim.Context(), claimKey{}, "from-token"))
	tests := []struct {
		name string
		res  tenancy.Resolver
		r    *http.Request
		want string
	}{
		{"header default", tenancy.HeaderResolver(""), req("/", "X-Tenant", " acme "), "acme"},
		{"header named", tenancy.HeaderResolver("x-org"), req("/", "X-Org", "acme"), "acme"},
		{"header missing", tenancy.HeaderResolver(""), req("/"), ""},
		{"subdomain", tenancy.SubdomainResolver("example.com"), req("http://acme.example.com/"), "acme"},
		{"subdomain port", tenancy.SubdomainResolver(".Example.com."), req("http://ACME.example.com:8080/"), "acme"},
		{"subdomain trailing dot", tenancy.SubdomainResolver("example.com"), req("http://acme.example.com./"), "acme"},
		{"subdomain base", tenancy.SubdomainResolver("example.com"), req("http://example.com/"), ""},
		{"subdomain deep", tenancy.SubdomainResolver("example.com"), req("http://a.acme.example.com/"), ""},
		{"subdomain other", tenancy.SubdomainResolver("example.com"), req("http://acme.example.org/"), ""},
		{"subdomain suffix", tenancy.SubdomainResolver("example.com"), req("http://acmeexample.com/"), ""},
		{"path", tenancy.PathResolver("/t/"), req("/t/acme/users"), "acme"},
		{"path end", tenancy.PathResolver("t"), req("/t/acme"), "acme"},
		{"path none", tenancy.PathResolver("/t/"), req("/users"), ""},
		{"path empty", tenancy.PathResolver("/t/"), req("/t//users"), ""},
		{"claim", claim, withClaim, "from-token"},
		{"claim none", claim, req("/"), ""},
		{"first of", tenancy.FirstOf(claim, tenancy.HeaderResolver("")), req("/", "X-Tenant", "hdr"), "hdr"},
		{"first of order", tenancy.FirstOf(claim, tenancy.HeaderResolver("")), func() *http.Request {
			r := withClaim.Clone(withClaim.Context())
			r.Header.Set("X-Tenant", "hdr")
			return r
		}(), "from-token"},
	}
	for _, tt := range tests {
		got, err := tt.res.Resolve(tt.r)
		if err != nil || got != tt.want {
			t.Errorf("%s: Resolve = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	boom := errors.New("boom")
	if _, err := tenancy.FirstOf(tenancy.ResolverFunc(func(*http.Request) (string, error) { return "", boom }), tenancy.HeaderResolver("")).Resolve(req("/", "X-Tenant", "x")); !errors.Is(err, boom) {
		t.Errorf("FirstOf error: %v", err)
	}
}

func FuzzSubdomainResolver(f *testing.F) {
	f.Add("acme.example.com", "example.com")
	f.Add("ACME.example.com:80", ".example.com.")
	f.Add("[::1]:80", "")
	f.Fuzz(func(t *testing.T, host, base string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		got, err := tenancy.SubdomainResolver(base).Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		if got != "" {
			if tenancy.ValidSlug(got) != nil {
				t.Fatalf("host %q base %q: %q is not a slug", host, base, got)
			}
			if !strings.Contains(strings.ToLower(host), got+".") {
				t.Fatalf("host %q base %q: %q is not a label of the host", host, base, got)
			}
		}
	})
}

func FuzzPathResolver(f *testing.F) {
	f.Add("/t/acme/users", "/t/")
	f.Add("//", "")
	f.Fuzz(func(t *testing.T, path, prefix string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		got, err := tenancy.PathResolver(prefix).Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "/") || !strings.Contains(path, got) {
			t.Fatalf("path %q prefix %q: got %q", path, prefix, got)
		}
	})
}

func TestMiddleware(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		if err := tenancy.Migrate(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
		s := tenancy.NewStore()
		acme := &tenancy.Tenant{Slug: "acme", Name: "Acme"}
		gone := &tenancy.Tenant{Slug: "gone", Name: "Gone", Status: tenancy.StatusSuspended}
		for _, tn := range []*tenancy.Tenant{acme, gone} {
			if err := s.Create(ctx, db, tn); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		lk := &tenancy.CachedLookup{DB: db, Now: func() time.Time { return now }}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, ok := tenancy.FromContext(r.Context()); ok {
				w.Write([]byte(t.Slug))
				return
			}
			w.Write([]byte("none"))
		})
		strict := tenancy.Middleware(tenancy.HeaderResolver(""), lk)(h)
		lenient := tenancy.MiddlewareWithOptions(tenancy.HeaderResolver(""), lk, tenancy.MiddlewareOptions{Optional: true, AllowSuspended: true})(h)

		do := func(h http.Handler, tenant string) (int, string, string) {
			r := httptest.NewRequest("GET", "/", nil)
			if tenant != "" {
				r.Header.Set("X-Tenant", tenant)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code, w.Header().Get("Content-Type"), w.Body.String()
		}
		for _, tt := range []struct {
			h      http.Handler
			tenant string
			code   int
			body   string
		}{
			{strict, "acme", 200, "acme"},
			{strict, acme.ID.String(), 200, "acme"},
			{strict, "", 400, ""},
			{strict, "nobody", 404, ""},
			{strict, "gone", 403, ""},
			{lenient, "", 200, "none"},
			{lenient, "gone", 200, "gone"},
			{lenient, "nobody", 404, ""},
		} {
			code, ctype, body := do(tt.h, tt.tenant)
			if code != tt.code {
				t.Errorf("tenant %q: status %d, want %d (%s)", tt.tenant, code, tt.code, body)
			}
			if tt.code == 200 && body != tt.body {
				t.Errorf("tenant %q: body %q, want %q", tt.tenant, body, tt.body)
			}
			if tt.code != 200 {
				var p struct{ Status int }
				if ctype != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil || p.Status != tt.code {
					t.Errorf("tenant %q: not a problem document: %s %s", tt.tenant, ctype, body)
				}
			}
		}

		// The cache keeps answers for its TTL, then reads again.
		acme.Status = tenancy.StatusSuspended
		if err := s.Update(ctx, db, acme); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := do(strict, "acme"); code != 200 {
			t.Errorf("within TTL: status %d, want cached 200", code)
		}
		newcomer := &tenancy.Tenant{Slug: "nobody", Name: "Late"}
		if err := s.Create(ctx, db, newcomer); err != nil {
			t.Fatal(err)
		}
		now = now.Add(tenancy.DefaultCacheTTL + time.Millisecond)
		if code, _, _ := do(strict, "acme"); code != 403 {
			t.Errorf("after TTL: status %d, want 403", code)
		}
		if code, _, body := do(strict, "nobody"); code != 200 || body != "nobody" {
			t.Errorf("negative entry after TTL: %d %s", code, body)
		}
	})
}

func TestCachedLookupBounded(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := t.Context()
	if err := tenancy.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	lk := &tenancy.CachedLookup{DB: db, Size: 3}
	for _, k := range []string{"aa", "bb", "cc", "dd", "ee"} {
		if _, err := lk.LookupTenant(ctx, k); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Fatal(err)
		}
	}
	if n := lk.Len(); n > 3 {
		t.Errorf("cache holds %d entries, bound 3", n)
	}
}
