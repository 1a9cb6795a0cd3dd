package webhooks_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
)

// The signers below are written from each provider's documented algorithm,
// independently of the verifiers and of webhookstest.

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func stdSecretBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(h http.Header, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

// scheme describes one signature scheme for the shared table of tests.
type scheme struct {
	name string
	// secrets: two signing secrets, the old and the new one.
	old, new string
	// verifier builds the verifier accepting the given signing secrets.
	verifier func(secrets []string, now func() time.Time, tol time.Duration) webhooks.Verifier
	// sign signs body at time at with one secret.
	sign func(t testing.TB, secret string, body []byte, at time.Time) http.Header
	// expected returns every encoding of the correct signatures of body at
	// at for the configured secrets, none of which may appear in an error.
	expected    func(t testing.TB, secret string, body []byte, at time.Time) []string
	header      string   // the signature header
	otherHeader []string // other required headers
	malformed   []string // signature header values that are malformed
	timestamped bool
}

func encodings(sum []byte) []string {
	return []string{hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sum), base64.RawStdEncoding.EncodeToString(sum)}
}

func schemes(t testing.TB) []scheme {
	pub1, priv1, _ := ed25519.GenerateKey(nil)
	pub2, priv2, _ := ed25519.GenerateKey(nil)
	edPriv := map[string]ed25519.PrivateKey{"k1": priv1, "k2": priv2}
	edPub := map[string]string{
		"k1": "whpk_" + base64.StdEncoding.EncodeToString(pub1),
		"k2": "whpk_" + base64.StdEncoding.EncodeToString(pub2),
	}
	stdContent := func(id string, at time.Time, body []byte) []byte {
		return append([]byte(id+"."+strconv.FormatInt(at.Unix(), 10)+"."), body...)
	}
	return []scheme{
		{
			name: "hmac-hex", old: "old-secret", new: "new-secret", header: "X-Signature",
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				v := webhooks.HMAC{Now: now, Tolerance: tol}
				for _, x := range s {
					v.Secrets = append(v.Secrets, []byte(x))
				}
				return v
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				return http.Header{"X-Signature": {hex.EncodeToString(hmacSHA256([]byte(secret), body))}}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(hmacSHA256([]byte(secret), body))
			},
			malformed: []string{"zz", "abc", strings.Repeat("g", 64), hex.EncodeToString(make([]byte, 20))},
		},
		{
			name: "hmac-base64-prefix-timestamp", old: "old-secret", new: "new-secret", header: "X-Shop-Hmac",
			otherHeader: []string{"X-Shop-Timestamp"}, timestamped: true,
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				v := webhooks.HMAC{Header: "X-Shop-Hmac", Prefix: "sha256=", Encoding: webhooks.EncodingBase64,
					TimestampHeader: "X-Shop-Timestamp", Now: now, Tolerance: tol}
				for _, x := range s {
					v.Secrets = append(v.Secrets, []byte(x))
				}
				return v
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				ts := strconv.FormatInt(at.Unix(), 10)
				sum := hmacSHA256([]byte(secret), append([]byte(ts+"."), body...))
				return http.Header{"X-Shop-Hmac": {"sha256=" + base64.StdEncoding.EncodeToString(sum)}, "X-Shop-Timestamp": {ts}}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(hmacSHA256([]byte(secret), append([]byte(strconv.FormatInt(at.Unix(), 10)+"."), body...)))
			},
			malformed: []string{"sha256", "md5=abc", "sha256=" + hex.EncodeToString(make([]byte, 32)), "sha256=!!!!"},
		},
		{
			name: "stripe", old: "whsec_old", new: "whsec_new", header: "Stripe-Signature", timestamped: true,
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				return webhooks.Stripe{Secrets: s, Now: now, Tolerance: tol}
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				ts := strconv.FormatInt(at.Unix(), 10)
				sum := hmacSHA256([]byte(secret), append([]byte(ts+"."), body...))
				// A v0 entry, as Stripe sends in test mode, must be ignored.
				return http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + hex.EncodeToString(sum) + ",v0=" + strings.Repeat("0", 64)}}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(hmacSHA256([]byte(secret), append([]byte(strconv.FormatInt(at.Unix(), 10)+"."), body...)))
			},
			malformed: []string{
				"v1=" + strings.Repeat("a", 64),              // no t
				"t=1700000000",                               // no v1
				"t=abc,v1=" + strings.Repeat("a", 64),        // bad t
				"t=1,t=2,v1=" + strings.Repeat("a", 64),      // two t
				"t=1700000000,v1=xyz",                        // v1 not hex
				"t=1700000000,v0=" + strings.Repeat("a", 64), // only v0
				"garbage",
			},
		},
		{
			name: "github", old: "old secret", new: "It's a Secret to Everybody", header: "X-Hub-Signature-256",
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				return webhooks.GitHub{Secrets: s}
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), body))}}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(hmacSHA256([]byte(secret), body))
			},
			malformed: []string{strings.Repeat("a", 64), "sha1=" + strings.Repeat("a", 40), "sha256=xyz", "sha256=" + base64.StdEncoding.EncodeToString(make([]byte, 32))},
		},
		{
			name: "standard-v1", old: "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-32-byte-secret-for-testing!!")),
			new: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", header: "Webhook-Signature",
			otherHeader: []string{"Webhook-Id", "Webhook-Timestamp"}, timestamped: true,
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				return webhooks.StandardWebhooks{Secrets: s, Now: now, Tolerance: tol}
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				sum := hmacSHA256(stdSecretBytes(t, secret), stdContent("msg_1", at, body))
				return http.Header{
					"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {strconv.FormatInt(at.Unix(), 10)},
					"Webhook-Signature": {"v2,AAAA v1," + base64.StdEncoding.EncodeToString(sum)},
				}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(hmacSHA256(stdSecretBytes(t, secret), stdContent("msg_1", at, body)))
			},
			malformed: []string{"v1", "v1,!!!", "v1," + base64.StdEncoding.EncodeToString(make([]byte, 16)), "v9,AAAA", strings.Repeat("v1,AAAA ", 40)},
		},
		{
			name: "standard-v1a", old: "k1", new: "k2", header: "Webhook-Signature",
			otherHeader: []string{"Webhook-Id", "Webhook-Timestamp"}, timestamped: true,
			verifier: func(s []string, now func() time.Time, tol time.Duration) webhooks.Verifier {
				v := webhooks.StandardWebhooks{Now: now, Tolerance: tol}
				for _, k := range s {
					v.PublicKeys = append(v.PublicKeys, edPub[k])
				}
				return v
			},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) http.Header {
				sig := ed25519.Sign(edPriv[secret], stdContent("msg_1", at, body))
				return http.Header{
					"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {strconv.FormatInt(at.Unix(), 10)},
					"Webhook-Signature": {"v1a," + base64.StdEncoding.EncodeToString(sig)},
				}
			},
			expected: func(t testing.TB, secret string, body []byte, at time.Time) []string {
				return encodings(ed25519.Sign(edPriv[secret], stdContent("msg_1", at, body)))
			},
			malformed: []string{"v1a,AAAA", "v1a," + base64.StdEncoding.EncodeToString(make([]byte, 32))},
		},
	}
}

func TestSchemes(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	fixed := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	body := []byte(`{"id":"evt_1","type":"invoice.paid","amount":100}`)

	for _, sc := range schemes(t) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			both := sc.verifier([]string{sc.new, sc.old}, fixed(at), 0)
			onlyNew := sc.verifier([]string{sc.new}, fixed(at), 0)

			// noLeak checks that err names a check and holds no signature
			// that would have been correct for the request.
			noLeak := func(t *testing.T, err error, b []byte, ts time.Time) {
				t.Helper()
				ve, ok := errors.AsType[*webhooks.VerifyError](err)
				if !ok {
					t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
				}
				if ve.Reason() == "" {
					t.Fatal("empty reason")
				}
				for _, secret := range []string{sc.new, sc.old} {
					for _, sig := range sc.expected(t, secret, b, ts) {
						if strings.Contains(err.Error(), sig) || strings.Contains(fmt.Sprintf("%+v", ve), sig) {
							t.Fatalf("error %q contains the expected signature", err)
						}
					}
					if len(secret) > 3 && strings.Contains(err.Error(), secret) {
						t.Fatalf("error %q contains a secret", err)
					}
				}
			}
			wantErr := func(t *testing.T, err, target error) {
				t.Helper()
				if !errors.Is(err, target) {
					t.Fatalf("err = %v, want %v", err, target)
				}
			}

			t.Run("valid", func(t *testing.T) {
				if err := onlyNew.Verify(request(sc.sign(t, sc.new, body, at), body), body); err != nil {
					t.Fatalf("valid signature rejected: %v", err)
				}
			})
			t.Run("wrong secret", func(t *testing.T) {
				err := onlyNew.Verify(request(sc.sign(t, sc.old, body, at), body), body)
				wantErr(t, err, webhooks.ErrSignatureMismatch)
				noLeak(t, err, body, at)
			})
			t.Run("rotation", func(t *testing.T) {
				for _, s := range []string{sc.old, sc.new} {
					if err := both.Verify(request(sc.sign(t, s, body, at), body), body); err != nil {
						t.Fatalf("signature with %s rejected while both secrets are active: %v", s, err)
					}
				}
			})
			t.Run("tampered body", func(t *testing.T) {
				tampered := []byte(strings.Replace(string(body), "100", "999", 1))
				err := both.Verify(request(sc.sign(t, sc.new, body, at), tampered), tampered)
				wantErr(t, err, webhooks.ErrSignatureMismatch)
				noLeak(t, err, tampered, at)
			})
			t.Run("missing header", func(t *testing.T) {
				for _, name := range append([]string{sc.header}, sc.otherHeader...) {
					h := sc.sign(t, sc.new, body, at)
					h.Del(name)
					err := both.Verify(request(h, body), body)
					wantErr(t, err, webhooks.ErrMissingHeader)
					ve, _ := errors.AsType[*webhooks.VerifyError](err)
					if !strings.EqualFold(ve.Header, name) {
						t.Fatalf("VerifyError.Header = %q, want %q", ve.Header, name)
					}
					if !strings.Contains(strings.ToLower(ve.Reason()), "missing header "+strings.ToLower(name)) {
						t.Fatalf("reason %q does not name the header", ve.Reason())
					}
				}
			})
			t.Run("malformed header", func(t *testing.T) {
				for _, v := range sc.malformed {
					h := sc.sign(t, sc.new, body, at)
					h.Set(sc.header, v)
					err := both.Verify(request(h, body), body)
					wantErr(t, err, webhooks.ErrMalformedHeader)
					noLeak(t, err, body, at)
				}
				if sc.timestamped && len(sc.otherHeader) > 0 {
					h := sc.sign(t, sc.new, body, at)
					h.Set(sc.otherHeader[len(sc.otherHeader)-1], "yesterday")
					wantErr(t, both.Verify(request(h, body), body), webhooks.ErrMalformedHeader)
				}
			})
			t.Run("clock", func(t *testing.T) {
				h := sc.sign(t, sc.new, body, at)
				for _, c := range []struct {
					name string
					now  time.Time
					tol  time.Duration
					ok   bool
				}{
					{"4m later", at.Add(4 * time.Minute), 0, true},
					{"4m earlier", at.Add(-4 * time.Minute), 0, true},
					{"stale", at.Add(5*time.Minute + time.Second), 0, false},
					{"future", at.Add(-5*time.Minute - time.Second), 0, false},
					{"stale within 1h tolerance", at.Add(30 * time.Minute), time.Hour, true},
					{"stale, check disabled", at.Add(72 * time.Hour), -1, true},
				} {
					err := sc.verifier([]string{sc.new}, fixed(c.now), c.tol).Verify(request(h, body), body)
					switch {
					case c.ok || !sc.timestamped:
						if err != nil {
							t.Errorf("%s: %v", c.name, err)
						}
					default:
						if !errors.Is(err, webhooks.ErrTimestampOutOfRange) {
							t.Errorf("%s: err = %v, want ErrTimestampOutOfRange", c.name, err)
						} else {
							noLeak(t, err, body, at)
						}
					}
				}
			})
			t.Run("no secrets", func(t *testing.T) {
				err := sc.verifier(nil, fixed(at), 0).Verify(request(sc.sign(t, sc.new, body, at), body), body)
				wantErr(t, err, webhooks.ErrNoSecrets)
			})
			t.Run("redacted", func(t *testing.T) {
				for _, s := range []string{fmt.Sprint(both), fmt.Sprintf("%#v", both), fmt.Sprintf("%+v", both)} {
					if strings.Contains(s, sc.new) && len(sc.new) > 3 {
						t.Fatalf("formatted verifier %q shows a secret", s)
					}
				}
			})
		})
	}
}

// TestStandardWebhooksSpecVector checks the example of the Standard Webhooks
// specification repository.
func TestStandardWebhooksSpecVector(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	// The test's own computation must give the published signature.
	got := "v1," + base64.StdEncoding.EncodeToString(hmacSHA256(stdSecretBytes(t, secret), []byte(id+"."+ts+"."+string(body))))
	if got != want {
		t.Fatalf("independent computation = %s, want %s", got, want)
	}
	h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {want}}
	v := webhooks.StandardWebhooks{Secrets: []string{secret}, Now: func() time.Time { return time.Unix(1614265330, 0) }}
	if err := v.Verify(request(h, body), body); err != nil {
		t.Fatalf("spec vector rejected: %v", err)
	}
	// Without the prefix the secret is the same.
	v.Secrets = []string{strings.TrimPrefix(secret, "whsec_")}
	if err := v.Verify(request(h, body), body); err != nil {
		t.Fatalf("spec vector rejected with an unprefixed secret: %v", err)
	}
	// One more byte breaks it.
	if err := v.Verify(request(h, append(body, ' ')), append(body, ' ')); !errors.Is(err, webhooks.ErrSignatureMismatch) {
		t.Fatalf("err = %v, want ErrSignatureMismatch", err)
	}
}

// TestGitHubDocsVector checks the example of GitHub's "Validating webhook
// deliveries" documentation.
func TestGitHubDocsVector(t *testing.T) {
	t.Parallel()
	body := []byte("Hello, World!")
	h := http.Header{"X-Hub-Signature-256": {"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}}
	v := webhooks.GitHub{Secrets: []string{"It's a Secret to Everybody"}}
	if err := v.Verify(request(h, body), body); err != nil {
		t.Fatalf("documented example rejected: %v", err)
	}
}

func TestStandardWebhooksConfigErrors(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	body := []byte(`{}`)
	h := http.Header{"Webhook-Id": {"m"}, "Webhook-Timestamp": {"1700000000"},
		"Webhook-Signature": {"v1," + base64.StdEncoding.EncodeToString(make([]byte, 32)) + " v1a," + base64.StdEncoding.EncodeToString(make([]byte, 64))}}
	for _, v := range []webhooks.StandardWebhooks{
		{Secrets: []string{"whsec_not base64!"}},
		{PublicKeys: []string{"whpk_AAAA"}},
		{PublicKeys: []string{"pk_" + base64.StdEncoding.EncodeToString(make([]byte, 32))}},
	} {
		v.Now = func() time.Time { return at }
		err := v.Verify(request(h, body), body)
		if !errors.Is(err, webhooks.ErrInvalidSecret) {
			t.Errorf("%v: err = %v, want ErrInvalidSecret", v, err)
		}
	}
}

func TestHMACEncodings(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"1","type":"t"}`)
	secret := []byte("s3cret")
	sum := hmacSHA256(secret, body)
	for _, c := range []struct {
		enc webhooks.Encoding
		sig string
		ok  bool
	}{
		{webhooks.EncodingAuto, hex.EncodeToString(sum), true},
		{webhooks.EncodingAuto, strings.ToUpper(hex.EncodeToString(sum)), true},
		{webhooks.EncodingAuto, base64.StdEncoding.EncodeToString(sum), true},
		{webhooks.EncodingAuto, base64.RawURLEncoding.EncodeToString(sum), true},
		{webhooks.EncodingHex, hex.EncodeToString(sum), true},
		{webhooks.EncodingHex, base64.StdEncoding.EncodeToString(sum), false},
		{webhooks.EncodingBase64, base64.StdEncoding.EncodeToString(sum), true},
		{webhooks.EncodingBase64, hex.EncodeToString(sum), false},
	} {
		v := webhooks.HMAC{Secrets: [][]byte{secret}, Encoding: c.enc}
		err := v.Verify(request(http.Header{"X-Signature": {c.sig}}, body), body)
		if (err == nil) != c.ok {
			t.Errorf("encoding %d, signature %s: err = %v, want ok %v", c.enc, c.sig, err, c.ok)
		}
	}
}

func TestVerifierFunc(t *testing.T) {
	t.Parallel()
	v := webhooks.VerifierFunc(func(r *http.Request, body []byte) error {
		if r.Header.Get("X-Token") != "ok" {
			return webhooks.ErrSignatureMismatch
		}
		return nil
	})
	if err := v.Verify(request(http.Header{"X-Token": {"ok"}}, nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(request(nil, nil), nil); !errors.Is(err, webhooks.ErrSignatureMismatch) {
		t.Fatalf("err = %v", err)
	}
}
