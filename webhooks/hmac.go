package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// DefaultHMACHeader is the header [HMAC] reads when its Header is empty.
const DefaultHMACHeader = "X-Signature"

// Encoding is how a signature is written in a header.
type Encoding int

// Signature encodings. The zero value detects the encoding.
const (
	// EncodingAuto accepts hex (either case) and base64 (standard or URL
	// alphabet, with or without padding). The two cannot be confused: they
	// give digests of different lengths.
	EncodingAuto Encoding = iota
	// EncodingHex accepts hex only.
	EncodingHex
	// EncodingBase64 accepts standard base64 (padded or not) only.
	EncodingBase64
)

// HMAC verifies a plain HMAC of the raw body sent in one header, as many
// providers do ("X-Signature: sha256=9f86d0...").
//
// The zero value reads [DefaultHMACHeader], detects hex or base64, uses
// SHA-256 and checks no timestamp; it needs at least one secret.
//
// When TimestampHeader is set, the sender signs timestamp + "." + body, where
// timestamp is that header's value in Unix seconds, and the timestamp must be
// within Tolerance of the current time. Without it the scheme has no replay
// protection beyond the receivers' idempotency on the event id.
type HMAC struct {
	// Header holds the signature. Default "X-Signature".
	Header string
	// Encoding of the signature. Default EncodingAuto.
	Encoding Encoding
	// Prefix, when set, must start the header value and is removed before
	// decoding (for example "sha256=").
	Prefix string
	// Secrets are the active secrets, newest first. A signature made with
	// any of them passes: to rotate, put the new secret first, have the
	// sender switch to it, then remove the old one.
	Secrets [][]byte
	// Hash is the hash function. Default sha256.New.
	Hash func() hash.Hash
	// TimestampHeader, when set, names a signed Unix-seconds timestamp
	// header (see the type's doc).
	TimestampHeader string
	// Tolerance is how far the timestamp may be from now, either way.
	// Zero means DefaultTolerance; negative disables the check.
	Tolerance time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

var _ Verifier = HMAC{}

const schemeHMAC = "hmac"

// Verify implements [Verifier].
func (v HMAC) Verify(r *http.Request, body []byte) error {
	if len(v.Secrets) == 0 {
		return verifyErr(schemeHMAC, "", ErrNoSecrets, "")
	}
	header := v.Header
	if header == "" {
		header = DefaultHMACHeader
	}
	newHash := v.Hash
	if newHash == nil {
		newHash = sha256.New
	}
	raw := strings.TrimSpace(r.Header.Get(header))
	if raw == "" {
		return verifyErr(schemeHMAC, header, ErrMissingHeader, "")
	}
	var ts string
	var tsUnix int64
	if v.TimestampHeader != "" {
		ts = strings.TrimSpace(r.Header.Get(v.TimestampHeader))
		if ts == "" {
			return verifyErr(schemeHMAC, v.TimestampHeader, ErrMissingHeader, "")
		}
		var err error
		if tsUnix, err = parseUnix(schemeHMAC, v.TimestampHeader, ts); err != nil {
			return err
		}
	}
	if v.Prefix != "" {
		if !strings.HasPrefix(raw, v.Prefix) {
			return verifyErr(schemeHMAC, header, ErrMalformedHeader, "missing prefix "+v.Prefix)
		}
		raw = raw[len(v.Prefix):]
	}
	sig, ok := decodeSignature(raw, v.Encoding, newHash().Size())
	if !ok {
		return verifyErr(schemeHMAC, header, ErrMalformedHeader, "signature is not a valid digest")
	}
	matched := false
	for _, secret := range v.Secrets {
		m := hmac.New(newHash, secret)
		if v.TimestampHeader != "" {
			m.Write([]byte(ts))
			m.Write([]byte{'.'})
		}
		m.Write(body)
		if hmac.Equal(m.Sum(nil), sig) {
			matched = true
			break
		}
	}
	if !matched {
		return verifyErr(schemeHMAC, "", ErrSignatureMismatch, "")
	}
	if v.TimestampHeader != "" {
		return checkTolerance(schemeHMAC, tsUnix, v.Now, v.Tolerance)
	}
	return nil
}

// decodeSignature decodes a digest of the given size. It reports false when s
// is not a digest of that size in the encoding.
func decodeSignature(s string, enc Encoding, size int) ([]byte, bool) {
	tryHex := enc == EncodingAuto || enc == EncodingHex
	tryB64 := enc == EncodingAuto || enc == EncodingBase64
	if tryHex && len(s) == hex.EncodedLen(size) {
		if b, err := hex.DecodeString(s); err == nil {
			return b, true
		}
	}
	if tryB64 {
		encs := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding}
		if enc == EncodingAuto {
			encs = append(encs, base64.URLEncoding, base64.RawURLEncoding)
		}
		for _, e := range encs {
			if b, err := e.DecodeString(s); err == nil && len(b) == size {
				return b, true
			}
		}
	}
	return nil, false
}

// String describes v without its secrets.
func (v HMAC) String() string { return redacted("HMAC", len(v.Secrets), 0) }

// GoString describes v without its secrets.
func (v HMAC) GoString() string { return v.String() }

// LogValue describes v without its secrets.
func (v HMAC) LogValue() slog.Value { return slog.StringValue(v.String()) }
