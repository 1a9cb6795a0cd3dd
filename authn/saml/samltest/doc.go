// Package samltest runs a SAML 2.0 identity provider in process for tests:
// crewjam/saml's IdentityProvider with a freshly generated key and
// certificate, which logs a configured user in at once, plus helpers that
// submit its auto-posting response form the way a browser does.
//
//	idp, err := samltest.New(samltest.Config{User: samltest.User{NameID: "u1", Email: "ada@example.com"}})
//	defer idp.Close()
//	sp, err := saml.New(saml.Config{IDPMetadata: idp.Metadata(), ...})
//	md, _ := sp.Metadata()
//	idp.Register(md)
//	resp, _ := client.Get(loginURL)        // redirected to the IdP, which answers with a form
//	resp, _ = samltest.Submit(client, resp) // posted to the service provider's ACS
package samltest
