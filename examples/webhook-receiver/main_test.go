package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`msg_1 new                  -> 202 {"status":"accepted","id":"msg_1"}`,
		`msg_1 redelivered          -> 200 {"status":"duplicate","id":"msg_1"}`,
		`msg_2 signed with old key  -> 202 {"status":"accepted","id":"msg_2"}`,
		`msg_3 wrong secret         -> 401 problem: signature mismatch`,
		`msg_4 an hour old          -> 401 problem: timestamp outside tolerance`,
		`msg_5 body changed         -> 401 problem: signature mismatch`,
		`msg_6 no signature         -> 401 problem: missing header webhook-signature`,
		`batch of 3                 -> 207 {"results":[{"index":0,"id":"msg_7","status":"accepted"},{"index":1,"id":"msg_1","status":"duplicate"},{"index":2,"status":"rejected","error":"malformed event: missing type"}],"accepted":1,"duplicates":1,"rejected":1,"failed":0}`,
		"users/msg_1 user.created at 2025-03-01T12:00:00Z\nusers/msg_2 user.updated at 2025-03-01T12:05:00Z\nusers/msg_7 user.deleted at 2025-03-01T13:00:00Z\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
}

// TestSinkConformance checks the example's own sink against the contract
// the receivers rely on, as any Sink implementation should be checked.
func TestSinkConformance(t *testing.T) {
	webhookstest.RunSinkTests(t, func(t *testing.T) webhooks.Sink { return newMemorySink() })
}
