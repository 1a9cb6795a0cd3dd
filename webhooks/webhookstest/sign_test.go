package webhookstest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

func TestSignMatchesPublishedVectors(t *testing.T) {
	t.Parallel()
	h := webhookstest.SignGitHub([]byte("Hello, World!"), "It's a Secret to Everybody")
	if got, want := h.Get("X-Hub-Signature-256"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"; got != want {
		t.Errorf("SignGitHub = %s, want %s", got, want)
	}
	h = webhookstest.SignStandard("msg_p5jXN8AQM9LWM0D4loKWxJek", []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if got, want := h.Get("webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("SignStandard = %s, want %s", got, want)
	}
	if h.Get("webhook-timestamp") != "1614265330" || h.Get("webhook-id") != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Errorf("headers %v", h)
	}
}

func TestSignedRequestsVerify(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	now := func() time.Time { return at.Add(time.Minute) }
	body := []byte(`{"id":"evt_1","type":"t"}`)
	secret := webhookstest.GenerateStandardSecret()
	pub, priv := webhookstest.GenerateEd25519()
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(pub, "whpk_") || !strings.HasPrefix(priv, "whsk_") {
		t.Fatalf("key formats: %s %s %s", secret, pub, priv)
	}
	if _, err := webhooks.DecodeStandardPublicKey(pub); err != nil {
		t.Fatal(err)
	}
	hmacB64 := webhooks.HMAC{Secrets: [][]byte{[]byte("k")}, Encoding: webhooks.EncodingBase64, Header: "X-Sig", TimestampHeader: "X-Ts", Now: now}
	for _, c := range []struct {
		name string
		v    webhooks.Verifier
		h    http.Header
	}{
		{"hmac hex", webhooks.HMAC{Secrets: [][]byte{[]byte("k")}, Encoding: webhooks.EncodingHex}, webhookstest.SignHMAC(webhooks.HMAC{Secrets: [][]byte{[]byte("k")}}, body, at)},
		{"hmac base64 timestamp", hmacB64, webhookstest.SignHMAC(hmacB64, body, at)},
		{"stripe two secrets", webhooks.Stripe{Secrets: []string{"whsec_b"}, Now: now}, webhookstest.SignStripe(body, at, "whsec_a", "whsec_b")},
		{"github", webhooks.GitHub{Secrets: []string{"g"}}, webhookstest.SignGitHub(body, "g")},
		{"standard v1", webhooks.StandardWebhooks{Secrets: []string{secret}, Now: now}, webhookstest.SignStandard("m", body, at, secret)},
		{"standard v1a", webhooks.StandardWebhooks{PublicKeys: []string{pub}, Now: now}, webhookstest.SignStandard("m", body, at, priv)},
		{"standard both", webhooks.StandardWebhooks{PublicKeys: []string{pub}, Now: now}, webhookstest.SignStandard("m", body, at, webhookstest.GenerateStandardSecret(), priv)},
	} {
		if err := c.v.Verify(webhookstest.NewRequest("/", body, c.h), body); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A key pair verifies only its own signatures.
	other, _ := webhookstest.GenerateEd25519()
	v := webhooks.StandardWebhooks{PublicKeys: []string{other}, Now: now}
	if err := v.Verify(webhookstest.NewRequest("/", body, webhookstest.SignStandard("m", body, at, priv)), body); err == nil {
		t.Error("signature verified with another key")
	}
	if webhookstest.GenerateStandardSecret() == secret {
		t.Error("secrets repeat")
	}
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	r := webhookstest.NewRequest("/hooks/x", []byte("{}"), http.Header{"X-A": {"1", "2"}})
	if r.Method != http.MethodPost || r.URL.Path != "/hooks/x" || len(r.Header["X-A"]) != 2 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %+v", r)
	}
}

func TestMemorySinkConformance(t *testing.T) {
	t.Parallel()
	webhookstest.RunSinkTests(t, func(t *testing.T) webhooks.Sink { return &webhookstest.MemorySink{} })
}
