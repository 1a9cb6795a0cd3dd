package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/tenancy"
)

// CreateSuperuser creates a platform superadmin, or makes an existing user
// one, recording user.superadmin_granted in the platform audit chain (actor:
// the one in ctx, see [audit.WithActor] and [CLIActor], else the system). With an empty password a random one is generated and returned; an
// existing user keeps the password it has unless one is given.
func (s *Server) CreateSuperuser(ctx context.Context, email, password string) (generated string, err error) {
	email, err = normalizeEmail("email", email)
	if err != nil {
		return "", fmt.Errorf("%w: superuser email %q is not valid", ErrInvalidInput, email)
	}
	if password == "" {
		generated = rand.Text()
		password = generated
	} else if err := s.policy.Validate(password); err != nil {
		return "", fmt.Errorf("%w: superuser password: %v", ErrInvalidInput, err)
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		u := new(User)
		err := tx.NewSelect().Model(u).Where("email = ?", email).Scan(ctx)
		var before *userAudit
		switch {
		case err == nil:
			b := auditUser(u)
			before = &b
			q := tx.NewUpdate().Model(u).WherePK().Set("is_superadmin = TRUE").Set("updated_at = ?", now)
			if generated == "" {
				q = q.Set("password_hash = ?", hash)
			}
			if _, err := q.Exec(ctx); err != nil {
				return err
			}
			u.IsSuperadmin = true
		case errors.Is(err, sql.ErrNoRows):
			u = &User{ID: uuid.Must(uuid.NewV7()), Email: email, FullName: "Administrator", PasswordHash: hash, IsSuperadmin: true, CreatedAt: now, UpdatedAt: now}
			if err := s.insertUser(ctx, tx, u); err != nil {
				return err
			}
			if err := s.record(ctx, tx, &audit.Event{TenantID: uuid.Nil, Action: ActionUserCreated,
				ResourceType: "user", ResourceID: u.ID.String(), Changes: audit.Diff(nil, auditUser(u))}); err != nil {
				return err
			}
		default:
			return err
		}
		var b any
		if before != nil {
			b = before
		}
		return s.record(ctx, tx, &audit.Event{TenantID: uuid.Nil, Action: ActionUserSuperadmin,
			ResourceType: "user", ResourceID: u.ID.String(), Changes: audit.Diff(b, auditUser(u))})
	})
	if err != nil {
		return "", err
	}
	return generated, nil
}

// EnsureSuperuser creates the first superuser when none exists: from
// SAASKIT_ADMIN_EMAIL and SAASKIT_ADMIN_PASSWORD, or admin@localhost with a
// generated password that it returns for printing once.
func (s *Server) EnsureSuperuser(ctx context.Context) (email, generated string, err error) {
	n, err := s.db.NewSelect().Model((*User)(nil)).Where("is_superadmin").Count(ctx)
	if err != nil || n > 0 {
		return "", "", err
	}
	email = strings.TrimSpace(s.cfg.AdminEmail)
	if email == "" {
		email = "admin@example.com"
	}
	generated, err = s.CreateSuperuser(ctx, email, s.cfg.AdminPassword)
	return email, generated, err
}
