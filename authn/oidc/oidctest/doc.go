// Package oidctest runs an OpenID provider in process for tests: discovery,
// JWKS, an authorization endpoint that logs a configured user in at once and
// redirects back with a code, and a token endpoint that checks the client
// and the PKCE verifier and returns a signed ID token.
//
// Fields of [Config] bend the provider's answers (audience, nonce, state,
// email_verified) so that a test can check that a relying party refuses them.
//
//	idp := oidctest.New(oidctest.Config{ClientID: "app", ClientSecret: "s", Email: "ada@example.com", EmailVerified: true})
//	defer idp.Close()
//	rp, err := oidc.New(ctx, oidc.Config{Issuer: idp.URL, ClientID: "app", ClientSecret: "s", ...})
package oidctest
