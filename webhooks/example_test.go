package webhooks_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// A Receiver verifies, parses and stores each delivery once: a redelivery is
// answered 200 as a duplicate, a forged one 401.
func ExampleReceiver() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sink := &webhookstest.MemorySink{}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/stripe", &webhooks.Receiver{
		Provider: "stripe",
		Verifier: webhooks.Stripe{
			Secrets: []string{"whsec_new", "whsec_old"}, // newest first, during a rotation
			Now:     func() time.Time { return now },
		},
		Sink: sink,
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(body string, h http.Header) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/stripe", strings.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	body := `{"id":"evt_1","type":"invoice.paid","created":1740830400}`
	post(body, webhookstest.SignStripe([]byte(body), now, "whsec_new"))
	post(body, webhookstest.SignStripe([]byte(body), now, "whsec_old"))
	post(body, webhookstest.SignStripe([]byte(body), now, "whsec_forged"))
	post(body, webhookstest.SignStripe([]byte(body), now.Add(-time.Hour), "whsec_new"))
	fmt.Println("stored:", sink.Len())
	// Output:
	// 202 Accepted
	// 200 OK
	// 401 Unauthorized
	// 401 Unauthorized
	// stored: 1
}

// Verifiers can be used on their own; errors say which check failed.
func ExampleStandardWebhooks() {
	body := []byte(`{"test": 2432232314}`)
	v := webhooks.StandardWebhooks{
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		Now:     func() time.Time { return time.Unix(1614265330, 0) },
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	fmt.Println(v.Verify(webhookstest.NewRequest("/", body, h), body))

	h.Del("webhook-signature")
	fmt.Println(v.Verify(webhookstest.NewRequest("/", body, h), body))
	// Output:
	// <nil>
	// webhooks: standard-webhooks: missing header webhook-signature
}

// A BatchReceiver verifies one signature over many events and answers for
// each.
func ExampleBatchReceiver() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	br := &webhooks.BatchReceiver{
		Provider: "payments",
		Verifier: webhooks.HMAC{Secrets: [][]byte{[]byte("s3cret")}, Prefix: "sha256="},
		Sink:     &webhookstest.MemorySink{},
		Now:      func() time.Time { return now },
	}
	body := []byte(`{"events":[{"id":"e1","type":"paid"},{"id":"e2"},{"id":"e1","type":"paid"}]}`)
	h := webhookstest.SignHMAC(webhooks.HMAC{Secrets: [][]byte{[]byte("s3cret")}, Prefix: "sha256="}, body, now)
	rec := httptest.NewRecorder()
	br.ServeHTTP(rec, webhookstest.NewRequest("/webhooks/batch", body, h))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 207
	// {"results":[{"index":0,"id":"e1","status":"accepted"},{"index":1,"status":"rejected","error":"malformed event: missing type"},{"index":2,"id":"e1","status":"duplicate"}],"accepted":1,"duplicates":1,"rejected":1,"failed":0}
}
