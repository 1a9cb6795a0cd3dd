package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"

	"github.com/saaskit/saaskit/audit"
)

// Errors of [BackupSQLite] and [CheckSQLiteBackup].
var (
	// ErrBackupPostgres is returned for a Postgres database, which
	// Postgres's own tools back up (pg_dump).
	ErrBackupPostgres = errors.New("server: backup copies SQLite databases only; back up Postgres with pg_dump (see DEPLOY.md)")
	// ErrBackupExists is returned when the destination of a backup exists:
	// a backup never overwrites a file.
	ErrBackupExists = errors.New("server: backup destination exists")
	// ErrBackupInvalid is returned by [CheckSQLiteBackup] for a copy that
	// fails SQLite's integrity check or whose audit log does not verify.
	ErrBackupInvalid = errors.New("server: backup does not verify")
)

// BackupSQLite writes a consistent copy of the SQLite database db to dest, a
// file that must not exist yet. The server may be running and writing: the
// copy is made with VACUUM INTO, which reads one snapshot of the database
// (WAL mode lets writers go on meanwhile) and writes it compacted, with
// every committed transaction up to that snapshot and none after it. The
// copy is written to a temporary file beside dest, synced to disk and then
// linked to dest, so that dest either does not exist or holds a complete
// copy, and a file created at dest meanwhile is never replaced.
//
// It returns an error wrapping [ErrBackupPostgres] when db is Postgres and
// [ErrBackupExists] when dest exists. The copy holds everything the
// database holds: password hashes, sealed SSO secrets, webhook signing
// secrets and, unless SAASKIT_AUDIT_SIGNING_KEY is set, the audit signer key.
// Keep it as private as the database.
func BackupSQLite(ctx context.Context, db *bun.DB, dest string) error {
	if db.Dialect().Name() != dialect.SQLite {
		return fmt.Errorf("%w (the database is %s)", ErrBackupPostgres, db.Dialect().Name())
	}
	if dest == "" {
		return fmt.Errorf("%w: backup destination is empty", ErrInvalidInput)
	}
	dest, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("server: backup: %w", err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%w: %s", ErrBackupExists, dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("server: backup: %w", err)
	}
	dir := filepath.Dir(dest)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: backup directory %s does not exist", ErrInvalidInput, dir)
	}
	// The temporary name is fresh and in the same directory, so that the
	// final link is a rename within one file system.
	tmp := filepath.Join(dir, "."+filepath.Base(dest)+"."+uuid.NewString()+".tmp")
	defer os.Remove(tmp)
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("server: backup: vacuum into %s: %w", tmp, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("server: backup: %w", err)
	}
	// Link, unlike rename, fails when dest exists.
	if err := os.Link(tmp, dest); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrBackupExists, dest)
		}
		return fmt.Errorf("server: backup: %w", err)
	}
	if err := syncFile(dir); err != nil {
		return fmt.Errorf("server: backup: %w", err)
	}
	return nil
}

// syncFile flushes a file or directory to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// BackupReport is what [CheckSQLiteBackup] found in a copy.
type BackupReport struct {
	// Bytes is the size of the file.
	Bytes int64
	// Tenants is the number of tenants in the copy.
	Tenants int64
	// Users is the number of user accounts in the copy.
	Users int64
	// Chains is the number of audit chains verified (one per tenant with
	// events, and the platform chain).
	Chains int
	// Events is the number of audit events verified in those chains.
	Events int64
	// Unsealed is the number of audit events recorded but not chained yet
	// when the copy was made; a server running on the copy chains them.
	Unsealed int64
}

// CheckSQLiteBackup opens the SQLite file at path read-only and checks it:
// SQLite's integrity check, then every audit chain with [audit.Verify]. It
// returns what it found, and an error wrapping [ErrBackupInvalid] (and, for
// a broken chain, an [*audit.ChainError]) when something does not verify.
// It changes nothing in the file, so it checks a backup before a restore as
// well as after one.
func CheckSQLiteBackup(ctx context.Context, path string) (BackupReport, error) {
	var rep BackupReport
	st, err := os.Stat(path)
	if err != nil {
		return rep, fmt.Errorf("server: check backup: %w", err)
	}
	if st.IsDir() {
		return rep, fmt.Errorf("%w: %s is a directory", ErrInvalidInput, path)
	}
	rep.Bytes = st.Size()
	abs, err := filepath.Abs(path)
	if err != nil {
		return rep, fmt.Errorf("server: check backup: %w", err)
	}
	// mode=ro: the check never writes, and a missing file is an error
	// instead of a new empty database.
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	sqldb, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return rep, fmt.Errorf("server: check backup: %w", err)
	}
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	defer db.Close()

	var integrity []string
	if err := db.NewRaw("PRAGMA integrity_check").Scan(ctx, &integrity); err != nil {
		return rep, fmt.Errorf("%w: %s: %v", ErrBackupInvalid, path, err)
	}
	if len(integrity) != 1 || integrity[0] != "ok" {
		return rep, fmt.Errorf("%w: %s: integrity check: %s", ErrBackupInvalid, path, strings.Join(integrity, "; "))
	}
	if err := db.NewRaw("SELECT count(*) FROM tenants").Scan(ctx, &rep.Tenants); err != nil {
		return rep, fmt.Errorf("%w: %s is not a saaskit database: %v", ErrBackupInvalid, path, err)
	}
	if err := db.NewRaw("SELECT count(*) FROM users").Scan(ctx, &rep.Users); err != nil {
		return rep, fmt.Errorf("%w: %s is not a saaskit database: %v", ErrBackupInvalid, path, err)
	}
	// Every chain: those with a head, and tenants with events but no head
	// (nothing chained yet, or a head deleted behind the log's back).
	var chains []uuid.UUID
	err = db.NewRaw(`SELECT tenant_id FROM audit_heads UNION SELECT DISTINCT tenant_id FROM audit_events ORDER BY 1`).Scan(ctx, &chains)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: read audit chains: %v", ErrBackupInvalid, path, err)
	}
	for _, tenant := range chains {
		res, err := audit.Verify(ctx, db, tenant)
		rep.Events += res.Events
		rep.Unsealed += res.Unsealed
		if err != nil {
			return rep, fmt.Errorf("%w: %s: audit chain of tenant %s: %w", ErrBackupInvalid, path, tenant, err)
		}
		rep.Chains++
	}
	return rep, nil
}
