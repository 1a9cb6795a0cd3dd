package saml_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
)

func TestSigningCertificates(t *testing.T) {
	t.Parallel()
	idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "a", Email: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	ed, err := saml.ParseMetadata(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.SigningCertificates(ed)
	if err != nil || len(certs) == 0 {
		t.Fatalf("certificates %v, %v", certs, err)
	}
	if !certs[0].Equal(idp.Provider.Certificate) {
		t.Fatal("not the IdP's certificate")
	}

	// Without a KeyDescriptor, no response could ever be verified.
	bare := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com">
<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>
</IDPSSODescriptor></EntityDescriptor>`
	ed, err = saml.ParseMetadata([]byte(bare))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.SigningCertificates(ed); !errors.Is(err, saml.ErrConfig) || !strings.Contains(err.Error(), "no signing certificate") {
		t.Fatalf("bare metadata: %v", err)
	}
}
