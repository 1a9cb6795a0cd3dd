package oidc

import "errors"

// Errors returned by [RelyingParty.Finish]. Each error it returns for a bad
// callback wraps exactly one of these, so that a host service can map them to
// an HTTP status and log which check failed.
var (
	// ErrConfig means the Config is incomplete or discovery failed.
	ErrConfig = errors.New("oidc: invalid configuration")
	// ErrMissingState means the login cookie is absent, expired, or was not
	// signed with this relying party's key.
	ErrMissingState = errors.New("oidc: login state missing or expired")
	// ErrStateMismatch means the state in the callback is not the one bound
	// to the login cookie.
	ErrStateMismatch = errors.New("oidc: state mismatch")
	// ErrProviderError means the provider answered the callback with an
	// error (for example access_denied).
	ErrProviderError = errors.New("oidc: provider returned an error")
	// ErrExchange means the authorization code could not be exchanged for
	// tokens, or the token response had no ID token.
	ErrExchange = errors.New("oidc: code exchange failed")
	// ErrTokenInvalid means the ID token failed verification: signature,
	// issuer, audience or expiry.
	ErrTokenInvalid = errors.New("oidc: ID token invalid")
	// ErrNonceMismatch means the ID token's nonce is not the one bound to the
	// login cookie.
	ErrNonceMismatch = errors.New("oidc: nonce mismatch")
	// ErrEmailNotVerified means the ID token has no email, or its
	// email_verified claim is not true.
	ErrEmailNotVerified = errors.New("oidc: email not verified")
	// ErrDomainNotAllowed means the email's domain is not in
	// Config.AllowedDomains.
	ErrDomainNotAllowed = errors.New("oidc: email domain not allowed")
)
