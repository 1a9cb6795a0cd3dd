// Package sqldb opens the databases saaskit runs on: SQLite through the pure-Go
// modernc.org/sqlite driver (the embedded default) and Postgres through pgx's
// database/sql adapter, both under Bun.
//
// It is internal: the reference server and the test harness share it. Library
// packages take a *bun.DB or bun.IDB from their caller and never open one.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
)

// ErrBadURL is returned by Open for a database URL it cannot use.
var ErrBadURL = errors.New("sqldb: bad database URL")

// Options tunes Open. The zero value is the default.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "NORMAL" (the default) makes a
	// commit durable against a process crash but may lose the last transactions on
	// power loss; "FULL" makes every commit durable against power loss at the cost
	// of an fsync per commit; "OFF" is for tests only.
	Synchronous string
	// BusyTimeout is how long a SQLite writer waits for the lock; default 5s.
	BusyTimeout time.Duration
	// MaxOpenConns caps the pool; default 4*GOMAXPROCS for Postgres and
	// max(4, 2*GOMAXPROCS) for SQLite.
	MaxOpenConns int
	// SearchPath, for Postgres, sets the schema search path of every connection.
	SearchPath string
}

// IsPostgres reports whether rawURL names a Postgres database.
func IsPostgres(rawURL string) bool {
	return strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://")
}

// Open opens rawURL: "postgres://..." for Postgres, or a SQLite file given as a
// path, "sqlite://path" or "file:path". SQLite runs in WAL mode with foreign
// keys on, a busy timeout and immediate write transactions, so that concurrent
// writers queue instead of failing, and its WAL is checkpointed in the
// background rather than by commits (see checkpointLoop) until the DB is
// closed.
func Open(ctx context.Context, rawURL string, opts Options) (*bun.DB, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	var db *bun.DB
	if IsPostgres(rawURL) {
		cfg, err := pgx.ParseConfig(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		if opts.SearchPath != "" {
			cfg.RuntimeParams["search_path"] = opts.SearchPath
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		sqldb := stdlib.OpenDB(*cfg)
		n := opts.MaxOpenConns
		if n == 0 {
			n = 4 * runtime.GOMAXPROCS(0)
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db = bun.NewDB(sqldb, pgdialect.New())
	} else {
		dsn, err := sqliteDSN(rawURL, opts)
		if err != nil {
			return nil, err
		}
		sqldb := sql.OpenDB(cachingConnector{dsn: dsn, drv: &sqlite.Driver{}})
		n := opts.MaxOpenConns
		if n == 0 {
			n = max(4, 2*runtime.GOMAXPROCS(0))
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxIdleTime(0)
		db = bun.NewDB(sqldb, sqlitedialect.New())
		go checkpointLoop(sqldb)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: connect: %w", err)
	}
	return db, nil
}

func sqliteDSN(rawURL string, opts Options) (string, error) {
	path := rawURL
	path = strings.TrimPrefix(path, "sqlite://")
	path = strings.TrimPrefix(path, "sqlite:")
	path = strings.TrimPrefix(path, "file:")
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		return "", fmt.Errorf("%w: no SQLite file", ErrBadURL)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "NORMAL"
	}
	switch sync {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return "", fmt.Errorf("%w: synchronous must be OFF, NORMAL, FULL or EXTRA, not %q", ErrBadURL, opts.Synchronous)
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = 5 * time.Second
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+sync+")")
	// A page cache of up to 64 MiB a connection (allocated as used; the
	// default is 2 MiB): inserts into large indexes with scattered keys
	// then find their pages in memory instead of reading them back.
	q.Add("_pragma", "cache_size(-65536)")
	// Checkpoints run in the background (checkpointLoop), not in commits;
	// a WAL that grew past 64 MiB is cut back to that when it starts over.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Add("_pragma", "journal_size_limit(67108864)")
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), nil
}
