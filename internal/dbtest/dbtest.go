// Package dbtest runs a test on every database saaskit supports: SQLite always
// (a file in t.TempDir, WAL, foreign keys on) and Postgres when
// SAASKIT_TEST_POSTGRES_URL is set. Each Postgres test gets a schema of its own,
// so tests run in parallel without seeing each other's rows.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/internal/sqldb"
)

// PostgresEnv is the environment variable that holds the Postgres test URL.
const PostgresEnv = "SAASKIT_TEST_POSTGRES_URL"

// DB is one test database.
type DB struct {
	*bun.DB
	// Name is "sqlite" or "postgres".
	Name string
	// URL opens another connection pool on the same database (for Postgres
	// together with Schema as the search path).
	URL string
	// Schema is the Postgres schema of this test; empty on SQLite.
	Schema string
}

// IsPostgres reports whether db is the Postgres database.
func (db *DB) IsPostgres() bool { return db.Dialect().Name() == dialect.PG }

// Open opens another pool on the same database, as a second replica of a server
// would. It is closed when the test ends.
func (db *DB) Open(tb testing.TB) *bun.DB {
	tb.Helper()
	other, err := sqldb.Open(context.Background(), db.URL, sqldb.Options{SearchPath: db.Schema})
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(func() { other.Close() })
	return other
}

// Run runs fn as a subtest on SQLite and, when SAASKIT_TEST_POSTGRES_URL is
// set, on Postgres. Subtests are parallel.
func Run(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, SQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, Postgres(t))
	})
}

// SQLite opens a fresh SQLite database in a temporary directory.
func SQLite(tb testing.TB) *DB {
	tb.Helper()
	url := filepath.Join(tb.TempDir(), "test.db")
	db, err := sqldb.Open(context.Background(), url, sqldb.Options{Synchronous: "OFF"})
	if err != nil {
		tb.Fatalf("dbtest: open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return &DB{DB: db, Name: "sqlite", URL: url}
}

// PostgresURL returns SAASKIT_TEST_POSTGRES_URL, or skips the test when it is
// not set.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(PostgresEnv)
	if url == "" {
		tb.Skip("dbtest: " + PostgresEnv + " not set; skipping Postgres")
	}
	return url
}

// Postgres creates a fresh schema in the database at SAASKIT_TEST_POSTGRES_URL
// and opens a pool whose search path is that schema; the schema is dropped when
// the test ends. It skips the test when the variable is not set.
func Postgres(tb testing.TB) *DB {
	tb.Helper()
	url := PostgresURL(tb)
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, url, sqldb.Options{MaxOpenConns: 1})
	if err != nil {
		tb.Fatalf("dbtest: open postgres: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("dbtest: create schema: %v", err)
	}
	db, err := sqldb.Open(ctx, url, sqldb.Options{SearchPath: schema, MaxOpenConns: 8})
	if err != nil {
		tb.Fatalf("dbtest: open postgres: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := sqldb.Open(ctx, url, sqldb.Options{MaxOpenConns: 1})
		if err != nil {
			tb.Errorf("dbtest: drop schema: %v", err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("dbtest: drop schema: %v", err)
		}
	})
	return &DB{DB: db, Name: "postgres", URL: url, Schema: schema}
}
