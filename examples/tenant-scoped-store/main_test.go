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
		`acme     GET  /notes   -> 200 ["launch plan", "anvil order"]`,
		`globex   GET  /notes   -> 200 ["doomsday device"]`,
		`acme     GET  /notes/1 -> 200 note 1 "launch plan"`,
		`globex   GET  /notes/1 -> 404 note not found`,
		`(none)   GET  /notes   -> 400 problem: the request names no tenant`,
		`initech  GET  /notes   -> 404 problem: tenant not found`,
		`model query without tenant: ErrNoTenant=true`,
		`raw SQL without tenant:     ErrNoTenant=true`,
		`unscoped Count for acme:    ErrUnscoped=true`,
		`scoped Count for acme:      2`,
		`system context sees all:    3`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
}
