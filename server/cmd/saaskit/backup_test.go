package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/server"
)

func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "live.db")
	t.Setenv("SAASKIT_DATABASE_URL", dbPath)
	t.Setenv("SAASKIT_LOG_LEVEL", "error")
	backup := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := backupCmd(t.Context(), args, &out, &errb)
		return out.String() + errb.String(), err
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"createsuperuser", "-email", "ops@backup.example.com", "-password", "a-long-enough-password"}, &out, &out); err != nil {
		t.Fatalf("createsuperuser: %v\n%s", err, out.String())
	}

	dest := filepath.Join(dir, "copy.db")
	got, err := backup(dest)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, got)
	}
	if !strings.Contains(got, "backed up "+dbPath+" to "+dest) || !strings.Contains(got, "OK: "+dest) || !strings.Contains(got, "1 users") {
		t.Errorf("backup output: %q", got)
	}
	if got, err := backup("-check", dest); err != nil || !strings.Contains(got, "audit chains verified") {
		t.Errorf("backup -check: %v %q", err, got)
	}
	// The copy is a database the commands run on.
	out.Reset()
	if err := run(t.Context(), []string{"migrate", "status", "-database-url", dest}, &out, &out); err != nil || !strings.Contains(out.String(), "pending: none") {
		t.Errorf("migrate status on the copy: %v %q", err, out.String())
	}

	if _, err := backup(dest); !errors.Is(err, server.ErrBackupExists) {
		t.Errorf("backup over an existing file: %v", err)
	}
	if got, err := backup(); err == nil || !strings.Contains(got, "usage: saaskit backup") {
		t.Errorf("backup without a file: %v %q", err, got)
	}
	missing := filepath.Join(dir, "missing.db")
	if _, err := backup("-database-url", missing, filepath.Join(dir, "copy2.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup created the missing database: %v", err)
	}
	// Postgres is refused before connecting, with the tool to use instead.
	_, err = backup("-database-url", "postgres://saaskit@127.0.0.1:1/saaskit", filepath.Join(dir, "pg.db"))
	if !errors.Is(err, server.ErrBackupPostgres) || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("backup of Postgres: %v", err)
	}
	if _, err := backup("-check", filepath.Join(dir, "missing.db")); err == nil {
		t.Error("check of a missing file succeeded")
	}
}
