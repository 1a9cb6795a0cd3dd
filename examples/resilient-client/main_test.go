package main

import (
	"bytes"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := `== 1. the upstream fails twice, then answers
  attempt 1 GET /v1/orders: 503, retrying
  attempt 2 GET /v1/orders: 503, retrying
  attempt 3 GET /v1/orders: 200
  => 1 orders, first ord_1
== 2. outage: the breaker opens
  breaker orders-service: closed -> open
  attempt 1 GET /v1/orders: 503, retrying
  attempt 2 GET /v1/orders: integrations: circuit open: orders-service
  => refused by the breaker (ErrCircuitOpen); upstream requests in this call: 1
== 3. while open, calls fail fast
  attempt 1 GET /v1/orders: integrations: circuit open: orders-service
  => refused by the breaker (ErrCircuitOpen); upstream requests in this call: 0
== 4. while open, calls fail fast
  attempt 1 GET /v1/orders: integrations: circuit open: orders-service
  => refused by the breaker (ErrCircuitOpen); upstream requests in this call: 0
state: open
== 5. the upstream is back: a probe closes the breaker
  breaker orders-service: open -> half-open
  breaker orders-service: half-open -> closed
  attempt 1 GET /v1/orders: 200
  => 1 orders, first ord_1
state: closed
`
	if got := out.String(); got != want {
		t.Errorf("output differs\ngot:\n%s\nwant:\n%s", got, want)
	}
}
