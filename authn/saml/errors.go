package saml

import "errors"

// Errors returned by [ServiceProvider.Finish]. Every refusal of a response
// wraps [ErrInvalidResponse] and, where the cause is known, one of the more
// precise errors below. The text after the sentinel describes the failed
// check for logs; show clients the sentinel only.
var (
	// ErrConfig means the Config is incomplete or the IdP metadata does not
	// parse.
	ErrConfig = errors.New("saml: invalid configuration")
	// ErrInvalidResponse means the SAML response was refused.
	ErrInvalidResponse = errors.New("saml: invalid response")
	// ErrUnsolicited means a response arrived without a login started by
	// this browser, and IdP-initiated login is off.
	ErrUnsolicited = errors.New("saml: unsolicited response")
	// ErrRequestMismatch means the response does not answer the request
	// this browser started.
	ErrRequestMismatch = errors.New("saml: response does not answer this login")
	// ErrSignature means the response and its assertion are not signed, or
	// signed with a key the IdP metadata does not hold, or with SHA-1, or
	// were changed after signing.
	ErrSignature = errors.New("saml: signature invalid")
	// ErrExpired means the assertion is expired or not yet valid, beyond the
	// allowed clock skew.
	ErrExpired = errors.New("saml: assertion expired or not yet valid")
	// ErrAudience means the assertion is not addressed to this service
	// provider's entity id.
	ErrAudience = errors.New("saml: audience mismatch")
	// ErrRecipient means the response's destination or the assertion's
	// recipient is not this service provider's ACS URL.
	ErrRecipient = errors.New("saml: recipient mismatch")
	// ErrIssuer means the response was issued by another IdP than the one
	// configured.
	ErrIssuer = errors.New("saml: issuer mismatch")
	// ErrReplayed means the assertion was already accepted once.
	ErrReplayed = errors.New("saml: assertion replayed")
	// ErrNoEmail means the assertion carries no email attribute (and its
	// NameID is not an email address).
	ErrNoEmail = errors.New("saml: no email in assertion")
)
