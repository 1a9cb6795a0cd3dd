package oidctest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/saaskit/saaskit/authn/oidc/oidctest"
)

// The provider serves discovery at its URL, as a real one does.
func Example() {
	idp := oidctest.New(oidctest.Config{ClientID: "app", ClientSecret: "s3cret"})
	defer idp.Close()

	resp, err := http.Get(idp.URL + "/.well-known/openid-configuration")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var d struct {
		Issuer   string `json:"issuer"`
		TokenURL string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&d)
	fmt.Println(d.Issuer == idp.URL, strings.TrimPrefix(d.TokenURL, idp.URL))
	// Output: true /token
}
