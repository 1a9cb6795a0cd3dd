package apidocs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/saaskit/saaskit/server/apidocs"
)

func ExampleHandler() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"openapi": "3.1.0", "info": {"title": "Example", "version": "1"}, "paths": {}}`)
	})
	docs := apidocs.Handler(apidocs.Config{})
	mux.Handle("/api/docs", docs)
	mux.Handle("/api/docs/", docs)

	for _, path := range []string{"/api/docs", "/api/docs/", "/api/docs/assets/swagger-ui.css"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /api/docs 200 text/html; charset=utf-8
	// /api/docs/ 200 text/html; charset=utf-8
	// /api/docs/assets/swagger-ui.css 200 text/css; charset=utf-8
}

func ExampleConfig() {
	docs := apidocs.Handler(apidocs.Config{
		SpecURL: "/v2/openapi.json",
		Title:   "Acme API",
		Prefix:  "/v2/docs",
	})
	mux := http.NewServeMux()
	mux.Handle("/v2/docs", docs)
	mux.Handle("/v2/docs/", docs)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/docs/", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Security-Policy") == apidocs.ContentSecurityPolicy)
	// Output:
	// 200 true
}
