package webhookstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/saaskit/saaskit/webhooks"
)

// SignHMAC returns the headers that v expects for body, signed with v's
// newest secret (v.Secrets[0]): v.Header (default "X-Signature") holding
// v.Prefix and the digest in v.Encoding (hex for EncodingAuto), and, when
// v.TimestampHeader is set, that header holding at in Unix seconds. It panics
// when v has no secret.
func SignHMAC(v webhooks.HMAC, body []byte, at time.Time) http.Header {
	if len(v.Secrets) == 0 {
		panic("webhookstest: SignHMAC needs a secret")
	}
	newHash := v.Hash
	if newHash == nil {
		newHash = sha256.New
	}
	header := v.Header
	if header == "" {
		header = webhooks.DefaultHMACHeader
	}
	h := http.Header{}
	mac := hmac.New(newHash, v.Secrets[0])
	if v.TimestampHeader != "" {
		ts := strconv.FormatInt(at.Unix(), 10)
		h.Set(v.TimestampHeader, ts)
		mac.Write([]byte(ts + "."))
	}
	mac.Write(body)
	sum := mac.Sum(nil)
	sig := hex.EncodeToString(sum)
	if v.Encoding == webhooks.EncodingBase64 {
		sig = base64.StdEncoding.EncodeToString(sum)
	}
	h.Set(header, v.Prefix+sig)
	return h
}

// SignStripe returns a Stripe-Signature header for body at time at, with one
// v1 signature per secret (a sender rotating its secret signs with both).
func SignStripe(body []byte, at time.Time, secrets ...string) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	parts := []string{"t=" + ts}
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		parts = append(parts, "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	h := http.Header{}
	h.Set(webhooks.StripeHeader, strings.Join(parts, ","))
	return h
}

// SignGitHub returns an X-Hub-Signature-256 header for body.
func SignGitHub(body []byte, secret string) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	h := http.Header{}
	h.Set(webhooks.GitHubHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// SignStandard returns the Standard Webhooks headers webhook-id,
// webhook-timestamp and webhook-signature for body, sent at time at, with
// one signature per key: a v1 entry for a symmetric secret ("whsec_..."), a
// v1a entry for an Ed25519 private key ("whsk_...", as returned by
// GenerateEd25519). It panics on a key it cannot decode.
func SignStandard(id string, body []byte, at time.Time, keys ...string) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	content := []byte(id + "." + ts + ".")
	content = append(content, body...)
	var sigs []string
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, webhooks.StandardPrivateKeyPrefix); ok {
			sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(privateKey(rest), content)))
			continue
		}
		secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(k, webhooks.StandardSecretPrefix))
		if err != nil {
			panic("webhookstest: SignStandard: key is neither whsec_ nor whsk_ base64")
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	h := http.Header{}
	h.Set(webhooks.StandardIDHeader, id)
	h.Set(webhooks.StandardTimestampHeader, ts)
	h.Set(webhooks.StandardSignatureHeader, strings.Join(sigs, " "))
	return h
}

// privateKey decodes the base64 part of a whsk_ key: a 32-byte seed or a
// 64-byte private key.
func privateKey(b64 string) ed25519.PrivateKey {
	b, err := base64.StdEncoding.DecodeString(b64)
	switch {
	case err != nil:
	case len(b) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b)
	case len(b) == ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b)
	}
	panic("webhookstest: SignStandard: whsk_ key is not the base64 of an Ed25519 seed or private key")
}

// GenerateStandardSecret returns a new random Standard Webhooks secret:
// "whsec_" followed by the base64 of 32 random bytes.
func GenerateStandardSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return webhooks.StandardSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// GenerateEd25519 returns a new Ed25519 key pair for Standard Webhooks v1a
// signatures: the public key as "whpk_" + base64 (for
// StandardWebhooks.PublicKeys) and the private key as "whsk_" + base64 of
// the 64-byte key (for SignStandard).
func GenerateEd25519() (publicKey, privateKey string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("webhookstest: " + err.Error())
	}
	return webhooks.StandardPublicKeyPrefix + base64.StdEncoding.EncodeToString(pub),
		webhooks.StandardPrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv)
}

// NewRequest returns an incoming POST request to target (a path or URL)
// with body and the headers h, ready for a handler's ServeHTTP, as
// httptest.NewRequest does. Content-Type defaults to application/json.
func NewRequest(target string, body []byte, h http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	for k, vs := range h {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}
