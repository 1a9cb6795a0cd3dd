package integrations_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// An upstream that fails once and then succeeds: the client retries the GET
// and returns the final response.
func ExampleClient_Do() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	attempts := 0
	c := integrations.New(integrations.Config{
		InitialInterval: time.Millisecond,
		Observer: integrations.ObserverFuncs{Attempt: func(a integrations.AttemptInfo) {
			attempts = a.Attempt
			fmt.Printf("attempt %d: status %d, retried %v\n", a.Attempt, a.StatusCode, a.Retried)
		}},
	})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", attempts, "attempts")
	// Output:
	// attempt 1: status 503, retried true
	// attempt 2: status 200, retried false
	// 200 hello after 2 attempts
}

// A provider name set on the context keys the breaker; an open breaker fails
// at once with ErrCircuitOpen.
func ExampleWithKey() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()

	c := integrations.New(integrations.Config{MinRequests: 3, MaxAttempts: 1})
	ctx := integrations.WithKey(context.Background(), "payment-service")
	for range 4 {
		err := c.GetJSON(ctx, srv.URL, nil)
		var se *integrations.StatusError
		switch {
		case errors.Is(err, integrations.ErrCircuitOpen):
			fmt.Println("refused:", err)
		case errors.As(err, &se):
			fmt.Println("status", se.StatusCode, "attempts", se.Attempts)
		}
	}
	fmt.Println(c.State("payment-service"))
	// Output:
	// status 502 attempts 1
	// status 502 attempts 1
	// status 502 attempts 1
	// refused: integrations: circuit open: payment-service
	// open
}
