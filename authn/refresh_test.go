package authn_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/internal/dbtest"
)

func migrated(t *testing.T, db *dbtest.DB) {
	t.Helper()
	for range 2 { // idempotent
		if err := authn.Migrate(t.Context(), db.DB); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRefreshIssueRotate(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		ctx := t.Context()
		clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
		s := &authn.RefreshStore{Now: clk.now}
		user, tenant := uuid.New(), uuid.New()

		tok, rec, err := s.Issue(ctx, db, user, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, "skr_") || len(tok) != 4+43 {
			t.Fatalf("token %q", tok)
		}
		if rec.FamilyID != rec.ID || rec.UserID != user || rec.TenantID != tenant || rec.ParentID != uuid.Nil {
			t.Fatalf("record %+v", rec)
		}
		if !rec.ExpiresAt.Equal(clk.now().Add(authn.DefaultRefreshTTL)) {
			t.Fatalf("expires %v", rec.ExpiresAt)
		}
		// Only the hash is stored.
		n, err := db.NewSelect().Model((*authn.RefreshToken)(nil)).Where("token_hash = ?", []byte(tok)).Count(ctx)
		if err != nil || n != 0 {
			t.Fatalf("token stored in clear: %d %v", n, err)
		}

		clk.advance(time.Minute)
		tok2, rec2, err := s.Rotate(ctx, db, tok)
		if err != nil {
			t.Fatal(err)
		}
		if tok2 == tok || rec2.FamilyID != rec.ID || rec2.ParentID != rec.ID || rec2.UserID != user || rec2.TenantID != tenant {
			t.Fatalf("successor %+v", rec2)
		}
		var stored authn.RefreshToken
		if err := db.NewSelect().Model(&stored).Where("id = ?", rec.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if !stored.UsedAt.Equal(clk.now()) || !stored.RevokedAt.IsZero() {
			t.Fatalf("rotated record %+v", stored)
		}
		if _, _, err := s.Rotate(ctx, db, tok2); err != nil {
			t.Fatalf("rotate successor: %v", err)
		}

		for _, bad := range []string{"", "skr_", "skr_" + strings.Repeat("A", 43), "xyz_" + tok[4:], tok + "A"} {
			if _, _, err := s.Rotate(ctx, db, bad); !errors.Is(err, authn.ErrRefreshInvalid) {
				t.Errorf("Rotate(%q): %v", bad, err)
			}
		}
	})
}

func TestRefreshExpired(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		clk := &clock{t: time.Now()}
		s := &authn.RefreshStore{Now: clk.now, TTL: time.Hour}
		tok, _, err := s.Issue(t.Context(), db, uuid.New(), uuid.Nil)
		if err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Hour)
		if _, _, err := s.Rotate(t.Context(), db, tok); !errors.Is(err, authn.ErrRefreshExpired) {
			t.Fatalf("expired: %v", err)
		}
		n, err := s.DeleteExpired(t.Context(), db, clk.now().Add(time.Second))
		if err != nil || n != 1 {
			t.Fatalf("DeleteExpired = %d, %v", n, err)
		}
		if _, _, err := s.Rotate(t.Context(), db, tok); !errors.Is(err, authn.ErrRefreshInvalid) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestRefreshReuse(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		ctx := t.Context()
		clk := &clock{t: time.Now()}
		s := &authn.RefreshStore{Now: clk.now} // default grace, 10s
		a, recA, _ := s.Issue(ctx, db, uuid.New(), uuid.New())
		b, _, err := s.Rotate(ctx, db, a)
		if err != nil {
			t.Fatal(err)
		}
		// A client that lost the response retries within the grace: it gets
		// another successor in the family, and both successors work.
		clk.advance(authn.DefaultReuseGrace)
		c, recC, err := s.Rotate(ctx, db, a)
		if err != nil {
			t.Fatalf("retry within grace: %v", err)
		}
		if recC.FamilyID != recA.FamilyID || c == b {
			t.Fatalf("grace successor %+v", recC)
		}
		b2, _, err := s.Rotate(ctx, db, b)
		if err != nil {
			t.Fatal(err)
		}
		// After the grace, presenting a rotated token is reuse: the whole
		// family goes.
		clk.advance(time.Second)
		if _, _, err := s.Rotate(ctx, db, a); !errors.Is(err, authn.ErrRefreshReuse) {
			t.Fatalf("reuse after grace: %v", err)
		}
		for name, tok := range map[string]string{"a": a, "b2": b2, "c": c} {
			if _, _, err := s.Rotate(ctx, db, tok); !errors.Is(err, authn.ErrRefreshRevoked) {
				t.Errorf("%s after reuse: %v", name, err)
			}
		}
		n, _ := db.NewSelect().Model((*authn.RefreshToken)(nil)).
			Where("family_id = ?", recA.FamilyID).Where("revoked_at IS NULL").Count(ctx)
		if n != 0 {
			t.Fatalf("%d tokens of the family not revoked", n)
		}
	})
}

func TestRefreshRevoke(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		ctx := t.Context()
		s := &authn.RefreshStore{}
		alice, bob := uuid.New(), uuid.New()
		a1, _, _ := s.Issue(ctx, db, alice, uuid.New())
		a2, _, _ := s.Issue(ctx, db, alice, uuid.New())
		a3, _, _ := s.Issue(ctx, db, alice, uuid.New())
		b1, _, _ := s.Issue(ctx, db, bob, uuid.New())

		// Logout revokes one family, and is idempotent.
		for range 2 {
			if err := s.RevokeFamily(ctx, db, a1); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.Rotate(ctx, db, a1); !errors.Is(err, authn.ErrRefreshRevoked) {
			t.Fatalf("after logout: %v", err)
		}
		a2, _, err := s.Rotate(ctx, db, a2)
		if err != nil {
			t.Fatalf("other family after logout: %v", err)
		}
		if err := s.RevokeFamily(ctx, db, "skr_nope"); !errors.Is(err, authn.ErrRefreshInvalid) {
			t.Fatalf("logout with unknown token: %v", err)
		}

		// A password change revokes every family of the user, no one else's.
		if err := s.RevokeUser(ctx, db, alice); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{a2, a3} {
			if _, _, err := s.Rotate(ctx, db, tok); !errors.Is(err, authn.ErrRefreshRevoked) {
				t.Fatalf("after RevokeUser: %v", err)
			}
		}
		if _, _, err := s.Rotate(ctx, db, b1); err != nil {
			t.Fatalf("another user after RevokeUser: %v", err)
		}
	})
}

func TestRefreshFamilyRevokedBySibling(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		ctx := t.Context()
		s := &authn.RefreshStore{}
		a, _, _ := s.Issue(ctx, db, uuid.New(), uuid.Nil)
		b, recB, _ := s.Rotate(ctx, db, a)
		// A successor written after a logout (a rotation racing the logout)
		// is refused too: any revoked token revokes its family.
		if _, err := db.NewUpdate().Model((*authn.RefreshToken)(nil)).Set("revoked_at = ?", time.Now().UTC()).
			Where("family_id = ?", recB.FamilyID).Where("id <> ?", recB.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Rotate(ctx, db, b); !errors.Is(err, authn.ErrRefreshRevoked) {
			t.Fatalf("successor of a revoked family: %v", err)
		}
	})
}

func TestRefreshTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		ctx := t.Context()
		s := &authn.RefreshStore{}
		var tok string
		rollback := errors.New("rollback")
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if tok, _, err = s.Issue(ctx, tx, uuid.New(), uuid.Nil); err != nil {
				return err
			}
			if _, _, err := s.Rotate(ctx, tx, tok); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if _, _, err := s.Rotate(ctx, db, tok); !errors.Is(err, authn.ErrRefreshInvalid) {
			t.Fatalf("token of a rolled back transaction: %v", err)
		}
	})
}

// rotateConcurrently presents tok n times at once, over two connection pools
// (two replicas of a server), and returns the results.
func rotateConcurrently(t *testing.T, db *dbtest.DB, s *authn.RefreshStore, tok string, n int) ([]string, []error) {
	t.Helper()
	pools := []bun.IDB{db.DB, db.Open(t)}
	toks, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			toks[i], _, errs[i] = s.Rotate(t.Context(), pools[i%2], tok)
		})
	}
	close(start)
	wg.Wait()
	return toks, errs
}

func TestRefreshRotateRace(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		now := time.Now()
		s := &authn.RefreshStore{ReuseGrace: -1, Now: func() time.Time { return now }}
		tok, _, err := s.Issue(t.Context(), db, uuid.New(), uuid.Nil)
		if err != nil {
			t.Fatal(err)
		}
		toks, errs := rotateConcurrently(t, db, s, tok, 6)
		won, reused := -1, 0
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("two rotations of one token won: %d and %d", won, i)
				}
				won = i
			case errors.Is(err, authn.ErrRefreshReuse):
				reused++
			case errors.Is(err, authn.ErrRefreshRevoked):
			default:
				t.Fatalf("rotation %d: %v", i, err)
			}
		}
		if won < 0 || reused == 0 {
			t.Fatalf("winner %d, reuse errors %d: %v", won, reused, errs)
		}
		// Without a grace, the losers' reuse revoked the family, the winner's
		// successor included.
		if _, _, err := s.Rotate(t.Context(), db, toks[won]); !errors.Is(err, authn.ErrRefreshRevoked) {
			t.Fatalf("winner's successor: %v", err)
		}
	})
}

func TestRefreshRotateRaceWithinGrace(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		migrated(t, db)
		s := &authn.RefreshStore{}
		tok, rec, err := s.Issue(t.Context(), db, uuid.New(), uuid.Nil)
		if err != nil {
			t.Fatal(err)
		}
		toks, errs := rotateConcurrently(t, db, s, tok, 6)
		seen := map[string]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("rotation %d within grace: %v", i, err)
			}
			if seen[toks[i]] {
				t.Fatal("one successor token handed out twice")
			}
			seen[toks[i]] = true
			if _, _, err := s.Rotate(t.Context(), db, toks[i]); err != nil {
				t.Fatalf("successor %d: %v", i, err)
			}
		}
		var used int64
		used, err = db.NewSelect().Model((*authn.RefreshToken)(nil)).
			Where("family_id = ?", rec.FamilyID).Where("parent_id = ?", rec.ID).Count(t.Context())
		if err != nil || used != 6 {
			t.Fatalf("%d successors in the family, %v", used, err)
		}
	})
}
