package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

type rejection struct {
	provider, outcome string
	err               error
}

// rejections records OnReject calls.
type rejections struct {
	mu   sync.Mutex
	list []rejection
}

func (rj *rejections) hook(r *http.Request, provider, outcome string, err error) {
	if r == nil {
		panic("OnReject without the request")
	}
	rj.mu.Lock()
	defer rj.mu.Unlock()
	rj.list = append(rj.list, rejection{provider, outcome, err})
}

func (rj *rejections) take() []rejection {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	l := rj.list
	rj.list = nil
	return l
}

type failingSink struct{}

func (failingSink) Accept(context.Context, *webhooks.Event) (bool, error) {
	return false, errors.New("database down")
}

func TestReceiverOnReject(t *testing.T) {
	t.Parallel()
	var rj rejections
	rc := stripeReceiver(&webhookstest.MemorySink{}, nil, nil)
	rc.MaxBodyBytes = 256
	rc.OnReject = rj.hook
	unknown := &webhooks.Receiver{Provider: "stripe", Sink: &webhookstest.MemorySink{}, OnReject: rj.hook,
		Resolve: func(r *http.Request) (webhooks.Verifier, context.Context, error) {
			return nil, nil, fmt.Errorf("%w: no such connection", webhooks.ErrUnknownSource)
		}}
	big := bytes.Repeat([]byte("x"), 1024)
	chunked := webhookstest.NewRequest("/webhooks/stripe", big, nil)
	chunked.ContentLength = -1 // read past the limit, not refused on the header
	get := httptest.NewRequest("GET", "/webhooks/stripe", nil)
	cases := []struct {
		name    string
		h       http.Handler
		req     *http.Request
		outcome string
		is      error // the cause wraps it; nil: no cause
	}{
		{"signature", rc, webhookstest.NewRequest("/webhooks/stripe", stripeBody, webhookstest.SignStripe(stripeBody, testNow, "whsec_other")), webhooks.OutcomeUnauthorized, webhooks.ErrSignatureMismatch},
		{"timestamp", rc, webhookstest.NewRequest("/webhooks/stripe", stripeBody, webhookstest.SignStripe(stripeBody, testNow.Add(-time.Hour), stripeKey)), webhooks.OutcomeUnauthorized, webhooks.ErrTimestampOutOfRange},
		{"header", rc, webhookstest.NewRequest("/webhooks/stripe", stripeBody, nil), webhooks.OutcomeUnauthorized, webhooks.ErrMissingHeader},
		{"malformed", rc, stripeRequest([]byte(`{"no":"id"}`)), webhooks.OutcomeRejected, webhooks.ErrMalformedEvent},
		{"too large by length", rc, webhookstest.NewRequest("/webhooks/stripe", big, nil), webhooks.OutcomeTooLarge, nil},
		{"too large when read", rc, chunked, webhooks.OutcomeTooLarge, nil},
		{"unknown source", unknown, stripeRequest(stripeBody), webhooks.OutcomeUnknownSource, webhooks.ErrUnknownSource},
		{"method", rc, get, webhooks.OutcomeMethodNotAllowed, nil},
	}
	for _, tc := range cases {
		rec := serve(tc.h, tc.req)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Errorf("%s: status %d, want a 4xx", tc.name, rec.Code)
		}
		got := rj.take()
		if len(got) != 1 || got[0].provider != "stripe" || got[0].outcome != tc.outcome {
			t.Errorf("%s: OnReject calls %+v, want one with outcome %s", tc.name, got, tc.outcome)
			continue
		}
		if tc.is != nil && !errors.Is(got[0].err, tc.is) {
			t.Errorf("%s: cause %v, want one wrapping %v", tc.name, got[0].err, tc.is)
		}
	}
	// Accepted, duplicate and internal errors are no refusals.
	failing := stripeReceiver(failingSink{}, nil, nil)
	failing.OnReject = rj.hook
	for _, h := range []http.Handler{rc, rc, failing} {
		serve(h, stripeRequest(stripeBody))
	}
	if got := rj.take(); len(got) != 0 {
		t.Errorf("OnReject called for a request that was not refused: %+v", got)
	}
}
