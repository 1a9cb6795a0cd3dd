package webhooks

import (
	"errors"
	"strings"
)

// Errors returned by the verifiers and the receivers. Verifiers wrap them in a
// [*VerifyError]; test with errors.Is.
var (
	// ErrMissingHeader means a header the scheme needs is absent or empty.
	ErrMissingHeader = errors.New("webhooks: missing header")
	// ErrMalformedHeader means a signature or timestamp header cannot be parsed.
	ErrMalformedHeader = errors.New("webhooks: malformed header")
	// ErrSignatureMismatch means no signature in the request matches any
	// configured secret or key.
	ErrSignatureMismatch = errors.New("webhooks: signature mismatch")
	// ErrTimestampOutOfRange means the signed timestamp is further from the
	// current time than the tolerance allows, in the past (a replay) or in
	// the future.
	ErrTimestampOutOfRange = errors.New("webhooks: timestamp outside tolerance")
	// ErrNoSecrets means a verifier has no secret or key configured. It is a
	// configuration error: the receivers answer 500 and log it.
	ErrNoSecrets = errors.New("webhooks: no secrets configured")
	// ErrInvalidSecret means a configured secret or key cannot be decoded (for
	// example a whsec_ secret that is not base64). It is a configuration error.
	ErrInvalidSecret = errors.New("webhooks: invalid secret")
	// ErrMalformedEvent means the body is not an event the parser can read:
	// not JSON, not an object, or without an id or type. Parsers and sinks
	// wrap it to make the receivers answer 400 (or reject one batch item).
	ErrMalformedEvent = errors.New("webhooks: malformed event")
	// ErrUnknownSource means a [Receiver.Resolve] function found no
	// connection for the request. The receivers answer 404.
	ErrUnknownSource = errors.New("webhooks: unknown webhook source")
)

// VerifyError describes which check of a signature scheme failed. It never
// holds a secret or the expected signature, so its message is safe to log and
// to return to the sender.
type VerifyError struct {
	// Scheme names the scheme: "hmac", "stripe", "github" or
	// "standard-webhooks".
	Scheme string
	// Header is the header involved, if any.
	Header string
	// Detail adds a short explanation, such as what was malformed or how far
	// the timestamp was off. It may be empty.
	Detail string
	// Err is one of the package's sentinel errors.
	Err error
}

// Error returns "webhooks: <scheme>: " followed by [VerifyError.Reason].
func (e *VerifyError) Error() string {
	return "webhooks: " + e.Scheme + ": " + e.Reason()
}

// Unwrap returns the sentinel error.
func (e *VerifyError) Unwrap() error { return e.Err }

// Reason returns the failure without the package prefix, for example
// "missing header webhook-signature", "signature mismatch" or "timestamp
// outside tolerance (612s in the past)". The receivers put it in the 401
// problem detail.
func (e *VerifyError) Reason() string {
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "webhooks: "))
	if e.Header != "" && (errors.Is(e.Err, ErrMissingHeader) || errors.Is(e.Err, ErrMalformedHeader)) {
		b.WriteString(" " + e.Header)
	}
	if e.Detail != "" {
		if e.Header != "" && errors.Is(e.Err, ErrMalformedHeader) {
			b.WriteString(":")
		}
		b.WriteString(" " + e.Detail)
	}
	return b.String()
}

func verifyErr(scheme, header string, err error, detail string) *VerifyError {
	return &VerifyError{Scheme: scheme, Header: header, Detail: detail, Err: err}
}
