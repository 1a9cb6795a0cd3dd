package saml_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"time"

	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
)

// A full SP-initiated login against an in-process IdP, driven by a client
// with a cookie jar as a browser would.
func Example() {
	idp, err := samltest.New(samltest.Config{User: samltest.User{
		NameID: "ada", Email: "ada@example.com", Name: "Ada", Role: "admin",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()

	var sp *saml.ServiceProvider
	done := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		u, _ := sp.Start(w, r)
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("POST /acs", func(w http.ResponseWriter, r *http.Request) {
		id, err := sp.Finish(w, r)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- fmt.Sprintf("%s (%s), role %s", id.Email, id.Name, id.Role)
	})
	app := httptest.NewServer(mux)
	defer app.Close()

	key, cert, err := saml.GenerateCertificate("example SP", time.Now(), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	sp, err = saml.New(saml.Config{
		MetadataURL: app.URL + "/metadata", ACSURL: app.URL + "/acs",
		Key: key, Certificate: cert, IDPMetadata: idp.Metadata(),
		CookieKey: []byte("an example key of 32 bytes or more"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	md, _ := sp.Metadata()
	idp.Register(md) // what the IdP's administrator does with the SP metadata

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/login") // redirected to the IdP, which answers with a form
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err = samltest.Submit(browser, resp) // the form's script posts it to the ACS
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(<-done)
	// Output: ada@example.com (Ada), role admin
}
