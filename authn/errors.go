package authn

import "errors"

// Errors returned by token verification. Every error [Verifier.Verify] returns
// for a bad token wraps exactly one of these; [IsTokenError] reports whether an
// error is one of them (as opposed to, say, a failing [Verifier.Revoked] hook).
var (
	// ErrTokenMissing means no token was presented.
	ErrTokenMissing = errors.New("authn: token missing")
	// ErrTokenMalformed means the token is not a compact JWS with one signature
	// and a JSON claims set.
	ErrTokenMalformed = errors.New("authn: token malformed")
	// ErrTokenSignature means the signature does not verify or its algorithm is
	// not allowed (none, HMAC, or not the algorithm of the key named by kid).
	ErrTokenSignature = errors.New("authn: token signature invalid")
	// ErrTokenExpired means the token's exp is in the past (beyond the leeway).
	ErrTokenExpired = errors.New("authn: token expired")
	// ErrTokenNotYetValid means the token's nbf or iat is in the future (beyond
	// the leeway).
	ErrTokenNotYetValid = errors.New("authn: token not yet valid")
	// ErrTokenClaims means a required claim or header is missing or wrong: iss,
	// aud, typ, exp, sub, tid or role.
	ErrTokenClaims = errors.New("authn: token claims invalid")
	// ErrUnknownKey means the token has no kid or names a key that the key
	// source does not hold.
	ErrUnknownKey = errors.New("authn: unknown signing key")
	// ErrTokenRevoked is the error a [Verifier.Revoked] hook returns (wrapped or
	// not) for a token that must no longer be accepted.
	ErrTokenRevoked = errors.New("authn: token revoked")
)

// Errors returned by authorization checks.
var (
	// ErrUnauthenticated means the context carries no [Principal].
	ErrUnauthenticated = errors.New("authn: unauthenticated")
	// ErrForbidden means the principal's role is below the required one.
	ErrForbidden = errors.New("authn: forbidden")
	// ErrInvalidRole is returned by [ParseRole] for an unknown role name.
	ErrInvalidRole = errors.New("authn: invalid role")
)

// IsTokenError reports whether err says that a presented token is missing,
// malformed, forged, expired, revoked or otherwise unacceptable, so that the
// right answer is 401 rather than 500.
func IsTokenError(err error) bool {
	for _, target := range []error{
		ErrTokenMissing, ErrTokenMalformed, ErrTokenSignature, ErrTokenExpired,
		ErrTokenNotYetValid, ErrTokenClaims, ErrUnknownKey, ErrTokenRevoked,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
