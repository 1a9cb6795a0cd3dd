package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SAASKIT_DATABASE_URL", filepath.Join(dir, "cli.db"))
	t.Setenv("SAASKIT_LOG_LEVEL", "error")
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(t.Context(), args, &out, &errb); err != nil {
			t.Fatalf("saaskit %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	if out := runOK("version"); !strings.HasPrefix(out, "saaskit ") {
		t.Errorf("version: %q", out)
	}
	if out := runOK("migrate", "up"); !strings.Contains(out, "server") || !strings.Contains(out, "pending: none") {
		t.Errorf("migrate up: %q", out)
	}
	if out := runOK("migrate", "status"); strings.Contains(out, "pending: 2") {
		t.Errorf("migrate status: %q", out)
	}
	// Flags after the subcommand apply: status of another, fresh database.
	other := filepath.Join(dir, "other.db")
	if out := runOK("migrate", "status", "-database-url", other); !strings.Contains(out, "server     applied: none") {
		t.Errorf("migrate status -database-url after the subcommand: %q", out)
	}
	var outX, errX bytes.Buffer
	if err := run(t.Context(), []string{"migrate", "status", "extra"}, &outX, &errX); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("migrate status extra: %v", err)
	}
	out := runOK("createsuperuser", "-email", "ops@example.com")
	if !strings.Contains(out, "ops@example.com, password ") {
		t.Errorf("createsuperuser: %q", out)
	}
	if out := runOK("createsuperuser", "-email", "ops2@example.com", "-password", "a-long-enough-password"); strings.Contains(out, "password") {
		t.Errorf("createsuperuser with a password printed one: %q", out)
	}
	if out := runOK("env-example"); !strings.Contains(out, "SAASKIT_DATABASE_URL=saaskit.db") {
		t.Errorf("env-example: %.200q", out)
	}
	var errb bytes.Buffer
	if err := run(t.Context(), []string{"frobnicate"}, &bytes.Buffer{}, &errb); err == nil || !strings.Contains(errb.String(), "usage") {
		t.Errorf("unknown command: %v %q", err, errb.String())
	}
	if err := run(t.Context(), []string{"createsuperuser"}, &bytes.Buffer{}, &errb); err == nil {
		t.Error("createsuperuser without -email succeeded")
	}
	if err := run(t.Context(), []string{"serve", "-access-token-ttl", "soon"}, &bytes.Buffer{}, &errb); err == nil {
		t.Error("serve with a bad duration succeeded")
	}
}
