package saml

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	crewjam "github.com/crewjam/saml"
)

// SigningCertificates returns the certificates that the IdP of ed signs
// with: those of its IDPSSODescriptors' KeyDescriptors whose use is
// "signing" or unspecified. It returns an error wrapping [ErrConfig] when a
// certificate does not parse or there is none, since then no response of
// that IdP could be accepted.
func SigningCertificates(ed *crewjam.EntityDescriptor) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return nil, fmt.Errorf("%w: IdP metadata: signing certificate is not base64", ErrConfig)
				}
				cert, err := x509.ParseCertificate(raw)
				if err != nil {
					return nil, fmt.Errorf("%w: IdP metadata: signing certificate: %v", ErrConfig, err)
				}
				certs = append(certs, cert)
			}
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: IdP metadata has no signing certificate", ErrConfig)
	}
	return certs, nil
}
