package oidc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/oidc/oidctest"
)

// A full login against an in-process provider, driven by a client with a
// cookie jar as a browser would.
func Example() {
	idp := oidctest.New(oidctest.Config{
		ClientID: "app", ClientSecret: "s3cret",
		Subject: "u1", Email: "ada@example.com", Name: "Ada", EmailVerified: true,
	})
	defer idp.Close()

	var rp *oidc.RelyingParty
	done := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		u, _ := rp.Start(w, r)
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		id, err := rp.Finish(w, r)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- fmt.Sprintf("%s (%s), verified %v", id.Email, id.Name, id.EmailVerified)
	})
	app := httptest.NewServer(mux)
	defer app.Close()

	var err error
	rp, err = oidc.New(context.Background(), oidc.Config{
		Issuer: idp.URL, ClientID: "app", ClientSecret: "s3cret",
		RedirectURL:    app.URL + "/callback",
		CookieKey:      []byte("an example key of 32 bytes or more"),
		AllowedDomains: []string{"example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(app.URL + "/login")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(<-done)
	// Output: ada@example.com (Ada), verified true
}
