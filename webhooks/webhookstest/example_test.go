package webhookstest_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// Sign a Standard Webhooks delivery with a fresh secret and post it to a
// receiver backed by a MemorySink.
func Example() {
	secret := webhookstest.GenerateStandardSecret()
	sink := &webhookstest.MemorySink{}
	rc := &webhooks.Receiver{
		Provider: "users",
		Verifier: webhooks.StandardWebhooks{Secrets: []string{secret}},
		Sink:     sink,
	}
	body := []byte(`{"type":"user.created","timestamp":"2025-03-01T12:00:00Z","data":{"id":"u_1"}}`)
	for range 2 {
		rec := httptest.NewRecorder()
		rc.ServeHTTP(rec, webhookstest.NewRequest("/webhooks/users", body,
			webhookstest.SignStandard("msg_1", body, time.Now(), secret)))
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	ev, _ := sink.Event("users", "msg_1")
	fmt.Println(ev.Type, ev.Timestamp.Format(time.DateOnly))
	// Output:
	// 202 {"status":"accepted","id":"msg_1"}
	// 200 {"status":"duplicate","id":"msg_1"}
	// user.created 2025-03-01
}

// SignStripe signs with every secret given, as a sender does while it
// rotates its secret.
func ExampleSignStripe() {
	body := []byte(`{"id":"evt_1"}`)
	h := webhookstest.SignStripe(body, time.Unix(1700000000, 0), "whsec_new", "whsec_old")
	fmt.Println(h.Get("Stripe-Signature")[:13])
	// Output:
	// t=1700000000,
}
