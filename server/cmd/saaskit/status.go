package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/server"
	"github.com/saaskit/saaskit/tenancy"
)

// statusCmd prints the platform's status, read from the database (the
// migration URL when one is set, as migrate does): the job queue by kind,
// the providers' stored health, the webhook events by status, and the
// newest failed events and job errors. -json prints the report as JSON,
// the body of GET /api/admin/status/.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	var recent int
	cfg, fs, err := loadConfig("status", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.IntVar(&recent, "recent", server.DefaultStatusRecent, "how many failed events and job errors to list (1 to 1000)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status: unexpected argument %q", fs.Arg(0))
	}
	if recent < 1 || recent > 1000 {
		return fmt.Errorf("status: -recent must be between 1 and 1000, not %d", recent)
	}
	url := cfg.DatabaseURL
	if cfg.MigrateDatabaseURL != "" {
		url = cfg.MigrateDatabaseURL
	}
	if !sqldb.IsPostgres(url) {
		// Opening a SQLite file that is not there would create it.
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite://"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("status: no SQLite database at %s (set SAASKIT_DATABASE_URL)", path)
		}
	}
	db, err := sqldb.Open(ctx, url, sqldb.Options{Synchronous: cfg.SQLiteSynchronous, MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := server.ReadStatus(ctx, &tenancy.TxRunner{DB: db}, server.StatusOptions{Recent: recent})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
