package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"failed delete: the invoice is already sent",
		"event 1 invoice.created by user/ada (req-1): amount <nil> -> 12000; status <nil> -> draft; payment_token <nil> -> [redacted];",
		"event 2 invoice.updated by user/ada (req-1): status draft -> sent; payment_token [redacted] -> [redacted];",
		"UPDATE of an event refused: true",
		"DELETE of events refused: true",
		"chain verified: 2 events",
		"checkpoint: 2 events, origin audit.example.com/" + tenantID.String(),
		"export verified: 2 events of tenant " + tenantID.String(),
		"tampered export: ErrBadExport=true",
		"first broken link: seq 1, hash mismatch",
		"export checked with another key: ErrBadExport=true",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "tok_live") {
		t.Errorf("a payment token reached the log:\n%s", out.String())
	}
	if strings.Contains(out.String(), "event 3") {
		t.Errorf("the rolled-back event was kept:\n%s", out.String())
	}
}
