package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/server"
)

const backupUsage = `usage: saaskit backup [flags] DEST      copy the SQLite database to the new file DEST, online
       saaskit backup -check FILE          check a copy: integrity and every audit chain

The server may keep running: the copy is one consistent snapshot. DEST must not
exist. Postgres databases are backed up with pg_dump instead (see DEPLOY.md).
`

// backupCmd writes an online copy of the SQLite database and checks it, or
// with -check checks an existing copy.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var check bool
	var verify bool
	cfg, fs, err := loadConfig("backup", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&check, "check", false, "check the SQLite file FILE (integrity, audit chains) instead of writing a copy")
		fs.BoolVar(&verify, "verify", true, "check the copy after writing it")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), backupUsage+"\nflags:\n")
			fs.PrintDefaults()
		}
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("backup: expected one file name")
	}
	file := fs.Arg(0)
	if check {
		return reportBackup(ctx, file, stdout)
	}
	if sqldb.IsPostgres(cfg.DatabaseURL) {
		return fmt.Errorf("backup: %w", server.ErrBackupPostgres)
	}
	// mode=rw: a database that does not exist is an error, not a new empty
	// file to back up.
	url := cfg.DatabaseURL
	if !strings.Contains(url, "mode=") {
		if strings.Contains(url, "?") {
			url += "&mode=rw"
		} else {
			url += "?mode=rw"
		}
	}
	db, err := sqldb.Open(ctx, url, sqldb.Options{MaxOpenConns: 1})
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", cfg.DatabaseURL, err)
	}
	defer db.Close()
	start := time.Now()
	if err := server.BackupSQLite(ctx, db, file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %s\n", cfg.DatabaseURL, file, time.Since(start).Round(time.Millisecond))
	if !verify {
		return nil
	}
	return reportBackup(ctx, file, stdout)
}

// reportBackup checks a copy and prints what it holds.
func reportBackup(ctx context.Context, file string, stdout io.Writer) error {
	rep, err := server.CheckSQLiteBackup(ctx, file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %s, %d bytes: %d tenants, %d users; %d audit chains verified (%d events, %d not chained yet)\n",
		file, rep.Bytes, rep.Tenants, rep.Users, rep.Chains, rep.Events, rep.Unsealed)
	return nil
}
