package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// StripeHeader is the header Stripe signs webhooks in.
const StripeHeader = "Stripe-Signature"

// Stripe verifies Stripe-style signatures:
//
//	Stripe-Signature: t=1492774577,v1=5257a869...,v1=...
//
// Each v1 entry is the hex HMAC-SHA256 of t + "." + body, keyed with the
// endpoint secret as given by the sender (the whole "whsec_..." string).
// Several v1 entries may be present (the sender signs with each of its active
// secrets); any match passes. Other schemes, such as v0, are ignored. The
// timestamp must be within Tolerance of the current time, in either direction.
type Stripe struct {
	// Secrets are the active endpoint secrets, newest first. To rotate, add
	// the new secret first and remove the old one once the sender has
	// switched; both verify in between.
	Secrets []string
	// Tolerance is how far t may be from now, either way. Zero means
	// DefaultTolerance; negative disables the check.
	Tolerance time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

var _ Verifier = Stripe{}

const schemeStripe = "stripe"

// stripeHeader is a parsed Stripe-Signature header.
type stripeHeader struct {
	timestamp string
	unix      int64
	v1        [][]byte
}

// parseStripeHeader parses "t=...,v1=...,v1=...". It ignores unknown keys
// and v1 values that are not 32-byte hex digests, and requires exactly one t
// and at least one valid v1.
func parseStripeHeader(s string) (stripeHeader, error) {
	var h stripeHeader
	seenT := false
	entries := 0
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if seenT {
				return h, verifyErr(schemeStripe, StripeHeader, ErrMalformedHeader, "more than one t= timestamp")
			}
			seenT = true
			unix, err := parseUnix(schemeStripe, StripeHeader, v)
			if err != nil {
				return h, err
			}
			h.timestamp, h.unix = v, unix
		case "v1":
			entries++
			if entries > maxSignatures {
				return h, verifyErr(schemeStripe, StripeHeader, ErrMalformedHeader, "too many signatures")
			}
			if len(v) != hex.EncodedLen(sha256.Size) {
				continue
			}
			if b, err := hex.DecodeString(v); err == nil {
				h.v1 = append(h.v1, b)
			}
		}
	}
	if !seenT {
		return h, verifyErr(schemeStripe, StripeHeader, ErrMalformedHeader, "no t= timestamp")
	}
	if len(h.v1) == 0 {
		return h, verifyErr(schemeStripe, StripeHeader, ErrMalformedHeader, "no v1 signature")
	}
	return h, nil
}

// Verify implements [Verifier].
func (v Stripe) Verify(r *http.Request, body []byte) error {
	if len(v.Secrets) == 0 {
		return verifyErr(schemeStripe, "", ErrNoSecrets, "")
	}
	raw := r.Header.Get(StripeHeader)
	if strings.TrimSpace(raw) == "" {
		return verifyErr(schemeStripe, StripeHeader, ErrMissingHeader, "")
	}
	h, err := parseStripeHeader(raw)
	if err != nil {
		return err
	}
	matched := false
	for _, secret := range v.Secrets {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(h.timestamp))
		m.Write([]byte{'.'})
		m.Write(body)
		want := m.Sum(nil)
		for _, got := range h.v1 {
			if hmac.Equal(want, got) {
				matched = true
			}
		}
	}
	if !matched {
		return verifyErr(schemeStripe, "", ErrSignatureMismatch, "")
	}
	return checkTolerance(schemeStripe, h.unix, v.Now, v.Tolerance)
}

// String describes v without its secrets.
func (v Stripe) String() string { return redacted("Stripe", len(v.Secrets), 0) }

// GoString describes v without its secrets.
func (v Stripe) GoString() string { return v.String() }

// LogValue describes v without its secrets.
func (v Stripe) LogValue() slog.Value { return slog.StringValue(v.String()) }
