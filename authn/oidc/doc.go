// Package oidc logs users in with an OpenID Connect provider: one
// [RelyingParty] per provider configuration, so that each tenant of a
// multi-tenant service can bring its own provider.
//
// A [RelyingParty] runs the authorization code flow with PKCE (S256). Start
// binds a fresh state, nonce and PKCE verifier to a short-lived login cookie
// signed with HMAC-SHA256 (the signature also covers the issuer, client id
// and redirect URL, so a cookie made for one tenant's provider is useless at
// another's) and returns the provider's authorization URL. Finish, at the
// callback, checks the state, clears the cookie, exchanges the code with the
// verifier, verifies the ID token (signature against the provider's JWKS,
// issuer, audience, expiry) and its nonce, requires email_verified to be
// true, and checks the email's domain against Config.AllowedDomains. It
// returns the [Identity]; every refusal wraps one of the package's sentinel
// errors ([ErrStateMismatch], [ErrNonceMismatch], [ErrTokenInvalid],
// [ErrEmailNotVerified], [ErrDomainNotAllowed], ...).
//
//	rp, err := oidc.New(ctx, oidc.Config{
//		Issuer:       "https://accounts.example.com",
//		ClientID:     clientID,
//		ClientSecret: clientSecret,
//		RedirectURL:  "https://app.example.com/sso/acme/callback",
//		CookieKey:    key, // 32 random bytes, kept across restarts
//	})
//	mux.HandleFunc("GET /sso/acme/login", func(w http.ResponseWriter, r *http.Request) {
//		u, _ := rp.Start(w, r)
//		http.Redirect(w, r, u, http.StatusFound)
//	})
//	mux.HandleFunc("GET /sso/acme/callback", func(w http.ResponseWriter, r *http.Request) {
//		id, err := rp.Finish(w, r)
//		// err == nil: id.Email is verified; sign the user in.
//	})
//
// Discovery (go-oidc) and the token exchange (x/oauth2) do the protocol
// work; this package adds the cookie, the checks a multi-tenant host needs
// and errors it can map. Package [github.com/saaskit/saaskit/authn/oidc/oidctest]
// runs a provider in process for tests.
package oidc
