package webhooks

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Standard Webhooks headers and key prefixes.
const (
	StandardIDHeader        = "webhook-id"
	StandardTimestampHeader = "webhook-timestamp"
	StandardSignatureHeader = "webhook-signature"
	// StandardSecretPrefix starts a symmetric secret: "whsec_" + base64.
	StandardSecretPrefix = "whsec_"
	// StandardPublicKeyPrefix starts an Ed25519 public key: "whpk_" + base64.
	StandardPublicKeyPrefix = "whpk_"
	// StandardPrivateKeyPrefix starts an Ed25519 private key: "whsk_" +
	// base64. Only senders (and webhookstest) use it.
	StandardPrivateKeyPrefix = "whsk_"
)

// StandardWebhooks verifies the Standard Webhooks scheme
// (https://www.standardwebhooks.com):
//
//	webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
//	webhook-timestamp: 1614265330
//	webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,...
//
// The signed content is id + "." + timestamp + "." + body. A v1 entry is the
// base64 HMAC-SHA256 of it keyed with the base64-decoded part of a "whsec_"
// secret; a v1a entry is a base64 Ed25519 signature of it, checked with a
// "whpk_" public key. The header holds space-separated entries; any entry
// that matches any configured secret or key passes, and entries of unknown
// versions are ignored. The timestamp must be within Tolerance of the current
// time, in either direction.
type StandardWebhooks struct {
	// Secrets are the active symmetric secrets ("whsec_" + base64; the
	// prefix is optional), newest first. During a rotation the sender signs
	// with both secrets and the header carries both signatures; configure
	// both here until the old one is retired.
	Secrets []string
	// PublicKeys are the active Ed25519 public keys ("whpk_" + base64),
	// newest first, for v1a signatures.
	PublicKeys []string
	// Tolerance is how far webhook-timestamp may be from now, either way.
	// Zero means DefaultTolerance; negative disables the check.
	Tolerance time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

var _ Verifier = StandardWebhooks{}

const schemeStandard = "standard-webhooks"

// standardSig is one entry of a webhook-signature header.
type standardSig struct {
	version string // "v1" or "v1a"
	sig     []byte
}

// parseStandardSignatures parses the space-separated "version,base64"
// entries of a webhook-signature header. Entries of unknown versions and
// entries that do not decode are skipped; it fails when none is usable.
func parseStandardSignatures(s string) ([]standardSig, error) {
	var sigs []standardSig
	n := 0
	for entry := range strings.FieldsSeq(s) {
		n++
		if n > maxSignatures {
			return nil, verifyErr(schemeStandard, StandardSignatureHeader, ErrMalformedHeader, "too many signatures")
		}
		version, b64, ok := strings.Cut(entry, ",")
		if !ok {
			continue
		}
		var size int
		switch version {
		case "v1":
			size = sha256.Size
		case "v1a":
			size = ed25519.SignatureSize
		default:
			continue
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(b) != size {
			continue
		}
		sigs = append(sigs, standardSig{version: version, sig: b})
	}
	if len(sigs) == 0 {
		return nil, verifyErr(schemeStandard, StandardSignatureHeader, ErrMalformedHeader, "no v1 or v1a signature")
	}
	return sigs, nil
}

// DecodeStandardSecret decodes a Standard Webhooks symmetric secret: base64,
// with or without the "whsec_" prefix. The error wraps [ErrInvalidSecret].
func DecodeStandardSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, StandardSecretPrefix))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: a Standard Webhooks secret is whsec_ followed by base64", ErrInvalidSecret)
	}
	return b, nil
}

// DecodeStandardPublicKey decodes a Standard Webhooks Ed25519 public key:
// "whpk_" + base64 of the 32-byte key. The error wraps [ErrInvalidSecret].
func DecodeStandardPublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, StandardPublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: a Standard Webhooks public key starts with whpk_", ErrInvalidSecret)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: a Standard Webhooks public key is whpk_ followed by the base64 of 32 bytes", ErrInvalidSecret)
	}
	return ed25519.PublicKey(b), nil
}

// Verify implements [Verifier].
func (v StandardWebhooks) Verify(r *http.Request, body []byte) error {
	if len(v.Secrets) == 0 && len(v.PublicKeys) == 0 {
		return verifyErr(schemeStandard, "", ErrNoSecrets, "")
	}
	id := strings.TrimSpace(r.Header.Get(StandardIDHeader))
	ts := strings.TrimSpace(r.Header.Get(StandardTimestampHeader))
	rawSig := r.Header.Get(StandardSignatureHeader)
	switch {
	case id == "":
		return verifyErr(schemeStandard, StandardIDHeader, ErrMissingHeader, "")
	case ts == "":
		return verifyErr(schemeStandard, StandardTimestampHeader, ErrMissingHeader, "")
	case strings.TrimSpace(rawSig) == "":
		return verifyErr(schemeStandard, StandardSignatureHeader, ErrMissingHeader, "")
	}
	unix, err := parseUnix(schemeStandard, StandardTimestampHeader, ts)
	if err != nil {
		return err
	}
	sigs, err := parseStandardSignatures(rawSig)
	if err != nil {
		return err
	}
	content := make([]byte, 0, len(id)+len(ts)+len(body)+2)
	content = append(content, id...)
	content = append(content, '.')
	content = append(content, ts...)
	content = append(content, '.')
	content = append(content, body...)

	matched := false
	var hasV1, hasV1a bool
	for _, s := range sigs {
		hasV1 = hasV1 || s.version == "v1"
		hasV1a = hasV1a || s.version == "v1a"
	}
	if hasV1 {
		for _, secret := range v.Secrets {
			key, err := DecodeStandardSecret(secret)
			if err != nil {
				return err
			}
			m := hmac.New(sha256.New, key)
			m.Write(content)
			want := m.Sum(nil)
			for _, s := range sigs {
				if s.version == "v1" && hmac.Equal(want, s.sig) {
					matched = true
				}
			}
		}
	}
	if hasV1a && !matched {
		for _, pk := range v.PublicKeys {
			key, err := DecodeStandardPublicKey(pk)
			if err != nil {
				return err
			}
			for _, s := range sigs {
				if s.version == "v1a" && ed25519.Verify(key, content, s.sig) {
					matched = true
					break
				}
			}
			if matched {
				break
			}
		}
	}
	if !matched {
		return verifyErr(schemeStandard, "", ErrSignatureMismatch, "")
	}
	return checkTolerance(schemeStandard, unix, v.Now, v.Tolerance)
}

// String describes v without its secrets.
func (v StandardWebhooks) String() string {
	return redacted("StandardWebhooks", len(v.Secrets), len(v.PublicKeys))
}

// GoString describes v without its secrets.
func (v StandardWebhooks) GoString() string { return v.String() }

// LogValue describes v without its secrets.
func (v StandardWebhooks) LogValue() slog.Value { return slog.StringValue(v.String()) }
