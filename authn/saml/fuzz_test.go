package saml_test

import (
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
)

// FuzzFinish posts arbitrary SAMLResponse documents to the ACS: Finish
// must refuse each one without panicking.
func FuzzFinish(f *testing.F) {
	idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "a", Email: "a@example.com"}})
	if err != nil {
		f.Fatal(err)
	}
	defer idp.Close()
	key, cert := spKey()
	sp, err := saml.New(saml.Config{
		MetadataURL: "https://sp.example/md", ACSURL: "https://sp.example/acs", AllowIDPInitiated: true,
		Key: key, Certificate: cert, IDPMetadata: idp.Metadata(), CookieKey: testKey,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>`))
	f.Add([]byte(`<Response><Assertion ID="a"><Signature/></Assertion></Response>`))
	f.Add([]byte("not xml"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}
		r := httptest.NewRequest("POST", "https://sp.example/acs", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id, err := sp.Finish(httptest.NewRecorder(), r); err == nil {
			t.Fatalf("accepted %q as %+v", doc, id)
		}
	})
}
