package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/internal/sqldb"
)

// restore copies a backup file to a new path, as an operator restores one,
// opens it and returns it as a test database.
func restore(t *testing.T, backup string) *dbtest.DB {
	t.Helper()
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(t.Context(), path, sqldb.Options{})
	if err != nil {
		t.Fatalf("open restored copy: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &dbtest.DB{DB: db, Name: "sqlite", URL: path}
}

// chainTenants lists the audit chains of db.
func chainTenants(t *testing.T, db *dbtest.DB) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	if err := db.NewRaw("SELECT tenant_id FROM audit_heads ORDER BY tenant_id").Scan(t.Context(), &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestBackupSQLiteWhileServing(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestServer(t, db)
	if _, err := s.srv.CreateSuperuser(audit.WithActor(t.Context(), CLIActor), "root@backup.example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	var owners []session
	for i := range 3 {
		o := s.register(fmt.Sprintf("owner%d@backup.example.com", i), fmt.Sprintf("Backup %d", i))
		s.addMember(o, fmt.Sprintf("member%d@backup.example.com", i), "admin")
		s.must(http.StatusOK, "PATCH", "/api/tenants/"+o.TenantID+"/", o.Access, map[string]any{"name": fmt.Sprintf("Backup %d renamed", i)})
		owners = append(owners, o)
	}
	before := s.auditLog(owners[0].Access, "")

	// The server runs as in production (its loops chain audit events every
	// quarter second) while a client keeps registering tenants.
	ctx, cancel := context.WithCancel(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(ctx, ln) }()
	var wg sync.WaitGroup
	started := make(chan struct{})
	writeErr := make(chan error, 1)
	live := 0
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			body := fmt.Sprintf(`{"email":"live%d@backup.example.com","password":%q,"full_name":"Live","tenant_name":"Live %d"}`, i, testPassword, i)
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+ln.Addr().String()+"/api/auth/register/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if ctx.Err() != nil {
				return
			}
			if err != nil || resp.StatusCode != http.StatusCreated {
				if err == nil {
					err = fmt.Errorf("register: status %d", resp.StatusCode)
					resp.Body.Close()
				}
				writeErr <- err
				return
			}
			resp.Body.Close()
			if live++; live == 2 {
				close(started)
			}
		}
	})
	select {
	case <-started:
	case err := <-writeErr:
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "saaskit-backup.db")
	backupErr := BackupSQLite(t.Context(), s.srv.DB(), dest)
	cancel()
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	select {
	case err := <-writeErr:
		t.Fatalf("writes during the backup: %v", err)
	default:
	}
	if backupErr != nil {
		t.Fatalf("backup: %v", backupErr)
	}

	// The copy checks out as a file...
	rep, err := CheckSQLiteBackup(t.Context(), dest)
	if err != nil {
		t.Fatalf("check backup: %v (%+v)", err, rep)
	}
	st, _ := os.Stat(dest)
	if rep.Bytes != st.Size() || rep.Tenants < 5 || rep.Users < rep.Tenants || rep.Chains < 4 || rep.Events == 0 {
		t.Errorf("report = %+v", rep)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*.tmp")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}

	// ... and as the database of a new server.
	rdb := restore(t, dest)
	var liveTenants, copiedTenants int64
	db.NewRaw("SELECT count(*) FROM tenants").Scan(t.Context(), &liveTenants)
	rdb.NewRaw("SELECT count(*) FROM tenants").Scan(t.Context(), &copiedTenants)
	if copiedTenants != rep.Tenants || copiedTenants > liveTenants || copiedTenants < 3+2 {
		t.Errorf("tenants: %d in the copy (report %d), %d live", copiedTenants, rep.Tenants, liveTenants)
	}
	r := newTestServer(t, rdb)
	if _, err := r.srv.SealAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range chainTenants(t, rdb) {
		res, err := audit.Verify(t.Context(), rdb, tenant)
		if err != nil || res.Unsealed != 0 {
			t.Fatalf("restored chain %s: %+v, %v", tenant, res, err)
		}
		var n int64
		rdb.NewRaw("SELECT count(*) FROM audit_events WHERE tenant_id = ?", tenant).Scan(t.Context(), &n)
		if res.Events != n || n == 0 {
			t.Errorf("restored chain %s verified %d of its %d events", tenant, res.Events, n)
		}
	}
	for i, o := range owners {
		sess := r.login(fmt.Sprintf("owner%d@backup.example.com", i), o.TenantID)
		var page struct {
			Items []struct{ Email, Role string }
		}
		r.must(http.StatusOK, "GET", "/api/users/", sess.Access, nil).decode(t, &page)
		found := false
		for _, u := range page.Items {
			found = found || (u.Email == fmt.Sprintf("member%d@backup.example.com", i) && u.Role == "admin")
		}
		if !found {
			t.Errorf("tenant %d: member missing from the copy: %+v", i, page.Items)
		}
		var tenant struct{ Name string }
		r.must(http.StatusOK, "GET", "/api/tenants/"+o.TenantID+"/", sess.Access, nil).decode(t, &tenant)
		if want := fmt.Sprintf("Backup %d renamed", i); tenant.Name != want {
			t.Errorf("tenant %d name in the copy: %q, want %q", i, tenant.Name, want)
		}
		var v verifyAuditOutput
		r.must(http.StatusOK, "GET", "/api/audit/verify/", sess.Access, nil).decode(t, &v.Body)
		if !v.Body.Valid || v.Body.Events == 0 {
			t.Errorf("tenant %d: verify on the copy = %+v", i, v.Body)
		}
		if i == 0 {
			// The tenant's log in the copy is the log it had, hash for hash.
			after := r.auditLog(sess.Access, "")
			if len(after) < len(before) {
				t.Fatalf("copy has %d events of tenant 0, the server had %d", len(after), len(before))
			}
			for j := range before {
				if after[j].ID != before[j].ID || after[j].Hash != before[j].Hash || after[j].Action != before[j].Action {
					t.Errorf("event %d: copy %+v, server %+v", j, after[j], before[j])
				}
			}
		}
	}
	root := r.login("root@backup.example.com", "")
	var v verifyAuditOutput
	r.must(http.StatusOK, "GET", "/api/audit/verify/?tenant="+uuid.Nil.String(), root.Access, nil).decode(t, &v.Body)
	if !v.Body.Valid || v.Body.Events == 0 {
		t.Errorf("platform chain on the copy: %+v", v.Body)
	}
}

func TestBackupTamperedCopyFailsVerify(t *testing.T) {
	tamper := map[string]struct {
		trigger, query string
		reason         string
	}{
		"changed event": {"audit_events_no_update",
			"UPDATE audit_events SET action = 'member.removed' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 2)",
			audit.ReasonHashMismatch},
		"deleted event": {"audit_events_no_delete",
			"DELETE FROM audit_events WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)",
			audit.ReasonHashMismatch},
		"deleted link": {"audit_chain_no_delete",
			"DELETE FROM audit_chain WHERE tenant_id = ? AND seq = (SELECT max(seq) FROM audit_chain WHERE tenant_id = ?)",
			audit.ReasonSequenceGap},
	}
	db := dbtest.SQLite(t)
	s := newTestServer(t, db)
	owner := s.register("owner@tamper-backup.example.com", "Tamper Backup")
	s.addMember(owner, "m@tamper-backup.example.com", "user")
	if _, err := s.srv.SealAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := BackupSQLite(t.Context(), s.srv.DB(), dest); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSQLiteBackup(t.Context(), dest); err != nil {
		t.Fatalf("untouched copy: %v", err)
	}
	tenant := uuid.MustParse(owner.TenantID)
	for name, tc := range tamper {
		t.Run(name, func(t *testing.T) {
			rdb := restore(t, dest)
			if _, err := rdb.ExecContext(t.Context(), "DROP TRIGGER "+tc.trigger); err != nil {
				t.Fatal(err)
			}
			args := []any{tenant}
			if strings.Count(tc.query, "?") == 2 {
				args = append(args, tenant)
			}
			res, err := rdb.NewRaw(tc.query, args...).Exec(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("tampered %d rows", n)
			}
			rep, err := CheckSQLiteBackup(t.Context(), rdb.URL)
			var ce *audit.ChainError
			if !errors.Is(err, ErrBackupInvalid) || !errors.As(err, &ce) || ce.Reason != tc.reason {
				t.Fatalf("check of the tampered copy = %+v, %v; want %s", rep, err, tc.reason)
			}
			if _, err := audit.Verify(t.Context(), rdb, tenant); !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("audit.Verify of the tampered copy: %v", err)
			}
			r := newTestServer(t, rdb)
			sess := r.login("owner@tamper-backup.example.com", owner.TenantID)
			var v verifyAuditOutput
			r.must(http.StatusOK, "GET", "/api/audit/verify/", sess.Access, nil).decode(t, &v.Body)
			if v.Body.Valid || v.Body.Broken == nil || v.Body.Broken.Reason != tc.reason {
				t.Fatalf("verify API on the tampered copy = %+v", v.Body)
			}
		})
	}
}

func TestBackupRefusals(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestServer(t, db)
	dir := t.TempDir()

	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := BackupSQLite(t.Context(), s.srv.DB(), existing)
	if !errors.Is(err, ErrBackupExists) || !strings.Contains(err.Error(), existing) {
		t.Errorf("existing destination: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("existing destination overwritten: %q", b)
	}
	if err := BackupSQLite(t.Context(), s.srv.DB(), filepath.Join(dir, "no", "such", "dir.db")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("missing directory: %v", err)
	}
	if err := BackupSQLite(t.Context(), s.srv.DB(), ""); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty destination: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("files left behind: %v", m)
	}

	// Checking: a missing file is not created, and a SQLite file that is
	// not a saaskit database does not pass.
	missing := filepath.Join(dir, "missing.db")
	if _, err := CheckSQLiteBackup(t.Context(), missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check created %s", missing)
	}
	other := filepath.Join(dir, "other.db")
	odb, err := sqldb.Open(t.Context(), other, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	odb.ExecContext(t.Context(), "CREATE TABLE notes (id INTEGER PRIMARY KEY)")
	odb.Close()
	if _, err := CheckSQLiteBackup(t.Context(), other); !errors.Is(err, ErrBackupInvalid) {
		t.Errorf("check of another database: %v", err)
	}
	if _, err := CheckSQLiteBackup(t.Context(), existing); !errors.Is(err, ErrBackupInvalid) {
		t.Errorf("check of a file that is not a database: %v", err)
	}
}

func TestBackupRefusesPostgres(t *testing.T) {
	db := dbtest.Postgres(t)
	s := newTestServer(t, db)
	dest := filepath.Join(t.TempDir(), "pg.db")
	err := BackupSQLite(t.Context(), s.srv.DB(), dest)
	if !errors.Is(err, ErrBackupPostgres) || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup of Postgres: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup of Postgres created %s", dest)
	}
}
