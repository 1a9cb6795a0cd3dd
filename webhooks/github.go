package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"
)

// GitHubHeader is the header GitHub signs webhooks in.
const GitHubHeader = "X-Hub-Signature-256"

// GitHub verifies GitHub-style signatures:
//
//	X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
//
// GitHub signs no timestamp, so there is no replay window to check: replays
// are absorbed by the receivers' idempotency on the delivery id (see
// [GitHubParser]).
type GitHub struct {
	// Secrets are the active webhook secrets, newest first. To rotate, add
	// the new secret first, change it on GitHub, then remove the old one.
	Secrets []string
}

var _ Verifier = GitHub{}

// Verify implements [Verifier].
func (v GitHub) Verify(r *http.Request, body []byte) error {
	const scheme = "github"
	if len(v.Secrets) == 0 {
		return verifyErr(scheme, "", ErrNoSecrets, "")
	}
	raw := strings.TrimSpace(r.Header.Get(GitHubHeader))
	if raw == "" {
		return verifyErr(scheme, GitHubHeader, ErrMissingHeader, "")
	}
	hexSig, ok := strings.CutPrefix(raw, "sha256=")
	if !ok {
		return verifyErr(scheme, GitHubHeader, ErrMalformedHeader, "missing prefix sha256=")
	}
	sig, ok := decodeSignature(hexSig, EncodingHex, sha256.Size)
	if !ok {
		return verifyErr(scheme, GitHubHeader, ErrMalformedHeader, "signature is not a hex SHA-256 digest")
	}
	for _, secret := range v.Secrets {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if hmac.Equal(m.Sum(nil), sig) {
			return nil
		}
	}
	return verifyErr(scheme, "", ErrSignatureMismatch, "")
}

// String describes v without its secrets.
func (v GitHub) String() string { return redacted("GitHub", len(v.Secrets), 0) }

// GoString describes v without its secrets.
func (v GitHub) GoString() string { return v.String() }

// LogValue describes v without its secrets.
func (v GitHub) LogValue() slog.Value { return slog.StringValue(v.String()) }
