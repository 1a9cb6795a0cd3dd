package apidocs_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/server/apidocs"
)

// newMux mounts the docs the way the reference server does.
func newMux(cfg apidocs.Config) *http.ServeMux {
	docs := apidocs.Handler(cfg)
	mux := http.NewServeMux()
	prefix := strings.TrimRight(cfg.Prefix, "/")
	if prefix == "" {
		prefix = apidocs.DefaultPrefix
	}
	mux.Handle(prefix, docs)
	mux.Handle(prefix+"/", docs)
	return mux
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var assetRef = regexp.MustCompile(`(?:src|href)="([^"]*/assets/[^"]*)"`)

func TestPage(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{})
	for _, path := range []string{"/api/docs", "/api/docs/"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			w := get(t, mux, http.MethodGet, path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", path, w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != apidocs.ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q", got)
			}
			for _, want := range []string{"script-src 'self'", "default-src 'self'"} {
				if !strings.Contains(apidocs.ContentSecurityPolicy, want) {
					t.Errorf("policy lacks %q", want)
				}
			}
			if strings.Contains(apidocs.ContentSecurityPolicy, "unsafe-eval") {
				t.Error("policy allows unsafe-eval")
			}
			body := w.Body.String()
			for _, bad := range []string{"http://", "https://", "//cdn", "<script>"} {
				if strings.Contains(body, bad) {
					t.Errorf("page contains %q:\n%s", bad, body)
				}
			}
			if strings.Count(body, "<script") != strings.Count(body, "<script src=") {
				t.Errorf("page has a script without src:\n%s", body)
			}
			for _, want := range []string{
				`<title>saaskit API</title>`,
				`data-spec-url="/api/openapi.json"`,
				`src="/api/docs/assets/swagger-ui-bundle.js?v=`,
				`src="/api/docs/assets/init.js?v=`,
				`href="/api/docs/assets/swagger-ui.css?v=`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
		})
	}
}

func TestPageConfig(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{
		SpecURL: "/v2/openapi.json?x=1&y=2",
		Title:   `Acme <API> & "co"`,
		Prefix:  "/reference/",
	})
	w := get(t, mux, http.MethodGet, "/reference", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`<title>Acme &lt;API&gt; &amp; &#34;co&#34;</title>`,
		`data-spec-url="/v2/openapi.json?x=1&amp;y=2"`,
		`src="/reference/assets/init.js?v=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if w := get(t, mux, http.MethodGet, "/reference/assets/init.js", nil); w.Code != http.StatusOK {
		t.Errorf("asset under custom prefix: status %d", w.Code)
	}
}

func TestPageRejectsScriptURL(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{SpecURL: "javascript:alert(1)"})
	body := get(t, mux, http.MethodGet, "/api/docs", nil).Body.String()
	if !strings.Contains(body, `data-spec-url="#ZgotmplZ"`) || strings.Contains(body, `href="javascript:`) {
		t.Errorf("page carries a javascript: URL:\n%s", body)
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{})
	page := get(t, mux, http.MethodGet, "/api/docs/", nil).Body.String()
	refs := assetRef.FindAllStringSubmatch(page, -1)
	if len(refs) != 4 {
		t.Fatalf("page refers to %d assets, want 4:\n%s", len(refs), page)
	}
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	for _, m := range refs {
		url := m[1]
		w := get(t, mux, http.MethodGet, url, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: status %d", url, w.Code)
			continue
		}
		ext := url[strings.LastIndex(url, "."):strings.Index(url, "?")]
		if got := w.Header().Get("Content-Type"); got != wantType[ext] {
			t.Errorf("GET %s: Content-Type %q, want %q", url, got, wantType[ext])
		}
		if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", url, got)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", url)
		}
		if w.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", url)
		}
	}

	// The bundle is the real Swagger UI build.
	w := get(t, mux, http.MethodGet, "/api/docs/assets/swagger-ui-bundle.js", nil)
	if !strings.Contains(w.Body.String(), "SwaggerUIBundle") || w.Body.Len() < 1<<20 {
		t.Errorf("bundle looks wrong: %d bytes", w.Body.Len())
	}
	if got := w.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("unversioned asset: Cache-Control %q, want no-cache", got)
	}
	for _, name := range []string{"LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"} {
		w := get(t, mux, http.MethodGet, "/api/docs/assets/"+name, nil)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("GET %s: status %d, Content-Type %q", name, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if !strings.Contains(get(t, mux, http.MethodGet, "/api/docs/assets/LICENSE", nil).Body.String(), "Apache License") {
		t.Error("LICENSE is not the Apache License")
	}
}

func TestAssetGzipAndETag(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{})
	const url = "/api/docs/assets/swagger-ui.css"
	plain := get(t, mux, http.MethodGet, url, nil)

	gz := get(t, mux, http.MethodGet, url, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip for Accept-Encoding gzip;q=0.8: %v", gz.Header())
	}
	if gz.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzip body %d bytes, plain %d", gz.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Error("gzip body does not decode to the plain body")
	}
	if gz.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Error("gzip and plain share an ETag")
	}

	if w := get(t, mux, http.MethodGet, url, http.Header{"Accept-Encoding": {"gzip;q=0"}}); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip sent although refused with q=0")
	}

	etag := plain.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	w := get(t, mux, http.MethodGet, url, http.Header{"If-None-Match": {etag}})
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", w.Code)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	mux := newMux(apidocs.Config{})
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/api/docs", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/docs/assets/init.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/docs/assets/missing.js", http.StatusNotFound},
		{http.MethodGet, "/api/docs/assets/", http.StatusNotFound},
		{http.MethodGet, "/api/docs/assets/..%2fhandler.go", http.StatusNotFound},
		{http.MethodGet, "/api/docs/assets/swagger-ui-bundle.js/", http.StatusNotFound},
		{http.MethodGet, "/api/docs/other", http.StatusNotFound},
		{http.MethodHead, "/api/docs/", http.StatusOK},
	}
	for _, tt := range tests {
		w := get(t, mux, tt.method, tt.path, nil)
		if w.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, w.Code, tt.status)
			continue
		}
		if tt.status >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, w.Header().Get("Content-Type"))
		}
		if tt.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, w.Header().Get("Allow"))
		}
	}
}
