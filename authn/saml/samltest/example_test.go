package samltest_test

import (
	"fmt"

	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
)

// The IdP's metadata is what a service provider is configured with.
func Example() {
	idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "ada", Email: "ada@example.com"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()
	ed, err := saml.ParseMetadata(idp.Metadata())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ed.EntityID == idp.URL+"/metadata", ed.IDPSSODescriptors[0].SingleSignOnServices[0].Location == idp.URL+"/sso")
	// Output: true true
}
