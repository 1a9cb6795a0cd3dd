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
// checkpoints off: the background checkpoints copy them into the database
// file, and the WAL starts over instead of growing with everything written.
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
	written, walFirst := int64(0), int64(0)
	for b := range bursts {
		for i := range perBurst {
			if _, err := db.Exec("INSERT INTO t (a, b) VALUES (?, ?)", b*perBurst+i, body); err != nil {
				t.Fatal(err)
			}
		}
		written += perBurst * int64(len(body))
		if b == 0 {
			walFirst = size(path + "-wal")
		}
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
	// Each burst's commits start the WAL over once the one before it was
	// copied (a checkpoint still copying the end of a burst when the next
	// begins lets that one append): the WAL holds a few bursts, not all
	// twelve.
	if wal := size(path + "-wal"); wal > bursts/2*walFirst {
		t.Fatalf("WAL is %d bytes after %d bursts of %d bytes of WAL each: it does not start over", wal, bursts, walFirst)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != bursts*perBurst {
		t.Fatalf("count = %d, %v", n, err)
	}
}
