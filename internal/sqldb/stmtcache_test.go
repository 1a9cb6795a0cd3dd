package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

func openSQLite(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "t.db"), Options{MaxOpenConns: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.DB.Exec(`CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	return db.DB
}

// TestStmtCache runs queries with arguments through one connection, so
// that each text is prepared once and reused: results stay right when a
// statement is reused, when the same text runs again while its rows are
// still open (nested), and when more texts than the cache holds evict
// older ones.
func TestStmtCache(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	for i := range 10 {
		if _, err := db.ExecContext(ctx, "INSERT INTO t (a, b) VALUES (?, ?)", i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	const q = "SELECT a, b FROM t WHERE a >= ? ORDER BY a"
	// In a transaction every query runs on its connection, so the same
	// text runs again while its statement's rows are still open.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, 5)
	if err != nil {
		t.Fatal(err)
	}
	var outer []int
	for rows.Next() {
		var a int
		var b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, a)
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE a >= ?", a).Scan(&n); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.QueryContext(ctx, q, a)
		if err == nil {
			var got []int
			for inner.Next() {
				var x int
				var y string
				inner.Scan(&x, &y)
				got = append(got, x)
			}
			inner.Close()
			if len(got) != n || got[0] != a {
				t.Fatalf("nested query from %d: %v, want %d rows from %d", a, got, n, a)
			}
		} else {
			t.Fatalf("nested query: %v", err)
		}
	}
	rows.Close()
	if fmt.Sprint(outer) != "[5 6 7 8 9]" {
		t.Fatalf("outer rows %v", outer)
	}
	// Reused after the nested run, the cached statement reads afresh.
	var first int
	if err := tx.QueryRowContext(ctx, q, 7).Scan(&first, new(string)); err != nil || first != 7 {
		t.Fatalf("reused statement: %d %v", first, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// More distinct texts than the cache holds, then the first again.
	for i := range stmtCacheSize + 20 {
		var got int
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT ? + %d", i), 1).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("query %d: %d %v", i, got, err)
		}
	}
	var b string
	if err := db.QueryRowContext(ctx, "SELECT b FROM t WHERE a = ?", 3).Scan(&b); err != nil || b != "v3" {
		t.Fatalf("after eviction: %q %v", b, err)
	}
	// A failing statement leaves the cached one usable.
	if _, err := db.ExecContext(ctx, "INSERT INTO t (a, b) VALUES (?, ?)", 3, "dup"); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t (a, b) VALUES (?, ?)", 100, "ok"); err != nil {
		t.Fatalf("after a failed exec: %v", err)
	}
}

// BenchmarkInsertPrepared inserts rows with a constant text and arguments
// through the pool, whose connections keep the prepared statement
// (cached), and through the driver opened directly (each exec compiles
// the statement).
func BenchmarkInsertPrepared(b *testing.B) {
	const q = `INSERT INTO t (b) SELECT json_extract(value, '$.b') FROM json_each(?)`
	run := func(b *testing.B, db *sql.DB) {
		for b.Loop() {
			if _, err := db.Exec(q, `[{"b":"x"}]`); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", func(b *testing.B) { run(b, openSQLite(b)) })
	b.Run("uncached", func(b *testing.B) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "u.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		run(b, db)
	})
}
