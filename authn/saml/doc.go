// Package saml is a SAML 2.0 service provider for one IdP per
// [ServiceProvider], so that each tenant of a multi-tenant service can bring
// its own IdP. It stands on crewjam/saml v0.6.x (earlier releases pin a
// vulnerable goxmldsig) and adds the policy a host service needs.
//
// [ServiceProvider.Start] makes an AuthnRequest (HTTP-Redirect binding) and
// binds its ID to a short-lived login cookie signed with HMAC-SHA256 (the
// signature also covers the SP entity id, the ACS URL and the IdP entity
// id). [ServiceProvider.Finish], at the ACS (HTTP-POST binding only),
// requires:
//
//   - a valid signature, on the response or on the assertion, by a key of
//     the configured IdP's metadata, with no SHA-1 anywhere in it;
//   - the configured IdP as issuer, this ACS URL as destination and
//     recipient, and this SP's entity id as audience;
//   - the validity window, within crewjam/saml's MaxClockSkew (3 minutes)
//     and MaxIssueDelay (90 seconds);
//   - an answer to the request bound to this browser's cookie: IdP-initiated
//     (unsolicited) responses are refused unless Config.AllowIDPInitiated;
//   - an assertion ID never accepted before ([ReplayCache]);
//   - an email, mapped with the [AttributeMap] like the name, the role and
//     the groups.
//
// Every refusal wraps [ErrInvalidResponse] and, where the cause is known, a
// more precise sentinel ([ErrSignature], [ErrExpired], [ErrReplayed],
// [ErrAudience], [ErrRecipient], [ErrIssuer], [ErrUnsolicited], ...).
//
//	key, cert, _ := saml.GenerateCertificate("acme SP", time.Now(), 0) // once, stored
//	sp, err := saml.New(saml.Config{
//		MetadataURL: "https://app.example.com/sso/acme/saml/metadata",
//		ACSURL:      "https://app.example.com/sso/acme/saml/acs",
//		Key:         key,
//		Certificate: cert,
//		IDPMetadata: idpMetadataXML,
//		CookieKey:   cookieKey, // 32 random bytes, kept across restarts
//		CookiePath:  "/sso/acme/saml/",
//	})
//	mux.HandleFunc("GET /sso/acme/saml/metadata", sp.ServeMetadata)
//	mux.HandleFunc("GET /sso/acme/saml/login", func(w http.ResponseWriter, r *http.Request) {
//		u, _ := sp.Start(w, r)
//		http.Redirect(w, r, u, http.StatusFound)
//	})
//	mux.HandleFunc("POST /sso/acme/saml/acs", func(w http.ResponseWriter, r *http.Request) {
//		id, err := sp.Finish(w, r)
//		// err == nil: sign in id.Email
//	})
//
// [ParseMetadata] reads IdP metadata and [SigningCertificates] lists the
// IdP's signing certificates (a host service can refuse metadata without one,
// and show their expiry dates to the tenant's admin). Several replicas of a
// service share one [ReplayCache] (for example a database table) so that an
// assertion accepted by one is refused by the others.
//
// Over https the login cookie is SameSite=None and Secure, because the
// response arrives as a cross-site POST from the IdP. Package
// [github.com/saaskit/saaskit/authn/saml/samltest] runs an IdP in process
// for tests.
package saml
