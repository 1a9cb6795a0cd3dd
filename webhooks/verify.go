package webhooks

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Verifier checks that a request was signed by the expected sender.
//
// Verify receives the raw body exactly as read from the wire: a verifier must
// not parse or re-encode it before computing a signature. It returns nil when
// the signature is valid, otherwise an error wrapping [ErrMissingHeader],
// [ErrMalformedHeader], [ErrSignatureMismatch] or [ErrTimestampOutOfRange]
// (the receivers answer 401), or a configuration error such as
// [ErrNoSecrets] (the receivers answer 500). The verifiers of this package
// return a [*VerifyError] and are safe for concurrent use.
type Verifier interface {
	Verify(r *http.Request, body []byte) error
}

// VerifierFunc adapts a function to a [Verifier].
type VerifierFunc func(r *http.Request, body []byte) error

// Verify calls f(r, body).
func (f VerifierFunc) Verify(r *http.Request, body []byte) error { return f(r, body) }

// DefaultTolerance is how far a signed timestamp may be from the current time,
// in either direction, when a scheme's Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// maxSignatures bounds how many signatures of one header are tried, so that
// a request cannot make the server run an unbounded number of verifications.
const maxSignatures = 32

// parseUnix parses a Unix-seconds timestamp header value. It is called before
// the signature is checked: the value is part of the signed content.
func parseUnix(scheme, header, v string) (int64, error) {
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ts < 0 {
		return 0, verifyErr(scheme, header, ErrMalformedHeader, "timestamp is not a Unix time in seconds")
	}
	return ts, nil
}

// checkTolerance compares a verified timestamp with now. A negative
// tolerance disables the check; zero means DefaultTolerance.
func checkTolerance(scheme string, ts int64, now func() time.Time, tolerance time.Duration) error {
	if tolerance < 0 {
		return nil
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if now == nil {
		now = time.Now
	}
	n := now().Unix()
	// Seconds of skew, computed without overflow for absurd timestamps.
	skew := float64(n) - float64(ts)
	if math.Abs(skew) <= tolerance.Seconds() {
		return nil
	}
	where := "in the past"
	if skew < 0 {
		where = "in the future"
	}
	return verifyErr(scheme, "", ErrTimestampOutOfRange, fmt.Sprintf("(%.0fs %s)", math.Abs(skew), where))
}

// redacted describes a verifier without its secrets, for String, GoString
// and LogValue.
func redacted(name string, secrets, keys int) string {
	s := fmt.Sprintf("webhooks.%s{secrets: %d", name, secrets)
	if keys > 0 {
		s += fmt.Sprintf(", public keys: %d", keys)
	}
	return s + "}"
}
