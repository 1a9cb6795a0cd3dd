package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackgroundCheckpoint writes bursts of transactions with SQLite's own
// checkpoints off: the background checkpoints copy each burst into the
// database file. (Once a checkpoint has copied the whole WAL, the next
// write starts it over: SQLite's doing, which how fast the checkpoints
// run decides, so the test does not time it.)
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var auto int
	if err := db.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	var limit int64
	if err := db.QueryRow("PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != 64<<20 {
		t.Fatalf("journal_size_limit = %d, %v; want 64 MiB", limit, err)
	}
	if _, err := db.Exec(`CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	body := strings.Repeat("x", 4000)
	const bursts, perBurst = 12, 250 // about 1 MiB a burst, 12 MiB in all
	written := int64(0)
	for b := range bursts {
		for i := range perBurst {
			if _, err := db.Exec("INSERT INTO t (a, b) VALUES (?, ?)", b*perBurst+i, body); err != nil {
				t.Fatal(err)
			}
		}
		written += perBurst * int64(len(body))
		// Wait until a background checkpoint has copied the burst into
		// the database file.
		deadline := time.Now().Add(10 * time.Second)
		for size(path) < written {
			if time.Now().After(deadline) {
				t.Fatalf("burst %d: database file %d bytes after %d bytes written: no background checkpoint", b, size(path), written)
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not a timing assertion
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != bursts*perBurst {
		t.Fatalf("count = %d, %v", n, err)
	}
}
