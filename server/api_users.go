package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// memberOrderings are the allowed orderings of the user list.
var memberOrderings = orderings{
	"":           {},
	"created_at": {column: "member.created_at", isTime: true, value: func(v any) string { return timeCursor(v.(*Member).CreatedAt) }},
	"email":      {column: `"user".email`, value: func(v any) string { return v.(*Member).User.Email }},
	"full_name":  {column: `"user".full_name`, value: func(v any) string { return v.(*Member).User.FullName }},
}

type listUsersInput struct {
	ListParams
	Role     string `query:"role" enum:"user,admin,owner" doc:"Only members with this role."`
	Email    string `query:"email" maxLength:"254" doc:"Only members whose email contains this text."`
	IsActive string `query:"is_active" enum:"true,false" doc:"Only active or inactive members."`
	Ordering string `query:"ordering" enum:"created_at,-created_at,email,-email,full_name,-full_name" doc:"Sort order; default: by id (creation order)."`
}

type userIDInput struct {
	ID uuid.UUID `path:"id"`
}

type userOutput struct {
	Body UserView
}

type createUserInput struct {
	Body struct {
		Email    string     `json:"email" format:"email" maxLength:"254"`
		FullName string     `json:"full_name" maxLength:"200"`
		Role     authn.Role `json:"role" enum:"user,admin,owner"`
		Password string     `json:"password,omitempty" maxLength:"256" doc:"Initial password; without one the user cannot log in with a password."`
	}
}

type updateUserBody struct {
	FullName *string     `json:"full_name,omitempty" maxLength:"200"`
	Role     *authn.Role `json:"role,omitempty" enum:"user,admin,owner"`
	IsActive *bool       `json:"is_active,omitempty"`
}

type updateUserInput struct {
	ID   uuid.UUID `path:"id"`
	Body updateUserBody
}

type replaceUserInput struct {
	ID   uuid.UUID `path:"id"`
	Body struct {
		FullName string     `json:"full_name" maxLength:"200"`
		Role     authn.Role `json:"role" enum:"user,admin,owner"`
		IsActive bool       `json:"is_active"`
	}
}

func (s *Server) registerUsers(api huma.API) {
	tags := []string{"users"}
	register(s, api, huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/api/users/", Tags: tags,
		Summary: "List the members of the current tenant", Security: bearerAuth,
	}, s.handleListUsers)
	register(s, api, huma.Operation{
		OperationID: "create-user", Method: http.MethodPost, Path: "/api/users/", Tags: tags,
		Summary: "Add a member to the current tenant (admin)", Security: bearerAuth, DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict},
	}, s.handleCreateUser)
	register(s, api, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/api/users/{id}/", Tags: tags,
		Summary: "A member of the current tenant", Security: bearerAuth,
	}, s.handleGetUser)
	register(s, api, huma.Operation{
		OperationID: "update-user", Method: http.MethodPatch, Path: "/api/users/{id}/", Tags: tags,
		Summary: "Change a member (admin)", Security: bearerAuth, Errors: []int{http.StatusConflict},
	}, s.handleUpdateUser)
	register(s, api, huma.Operation{
		OperationID: "replace-user", Method: http.MethodPut, Path: "/api/users/{id}/", Tags: tags,
		Summary: "Replace a member's name, role and state (admin)", Security: bearerAuth, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *replaceUserInput) (*userOutput, error) {
		b := in.Body
		return s.handleUpdateUser(ctx, &updateUserInput{ID: in.ID, Body: updateUserBody{FullName: &b.FullName, Role: &b.Role, IsActive: &b.IsActive}})
	})
	register(s, api, huma.Operation{
		OperationID: "delete-user", Method: http.MethodDelete, Path: "/api/users/{id}/", Tags: tags,
		Summary: "Remove a member from the current tenant (admin)", Security: bearerAuth, DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusConflict},
	}, s.handleDeleteUser)
}

func (s *Server) handleListUsers(ctx context.Context, in *listUsersInput) (*struct{ Body Page[UserView] }, error) {
	ctx, _, err := s.tenantContext(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := decodeCursor(in.Cursor, in.Ordering)
	if err != nil {
		return nil, invalid("query.cursor", publicMessage(err), in.Cursor)
	}
	var rows []*Member
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		q := db.NewSelect().Model(&rows).Relation("User")
		if in.Role != "" {
			q = q.Where("member.role = ?", in.Role)
		}
		if in.IsActive != "" {
			q = q.Where("member.is_active = ?", in.IsActive == "true")
		}
		if in.Email != "" {
			q = q.Where(`lower("user".email) LIKE ? ESCAPE '\'`, likePattern(in.Email))
		}
		if in.Search != "" {
			p := likePattern(in.Search)
			q = q.Where(`(lower("user".email) LIKE ? ESCAPE '\' OR lower("user".full_name) LIKE ? ESCAPE '\')`, p, p)
		}
		if !in.CreatedAfter.IsZero() {
			q = q.Where("member.created_at > ?", in.CreatedAfter.UTC())
		}
		if !in.CreatedBefore.IsZero() {
			q = q.Where("member.created_at < ?", in.CreatedBefore.UTC())
		}
		q, err := keyset(q, memberOrderings, in.Ordering, "member.user_id", cur)
		if err != nil {
			return err
		}
		return q.Limit(int64(in.Limit + 1)).Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	page := makePage(rows, in.Limit, memberView, func(last *Member) string {
		return memberOrderings.cursorAfter(in.Ordering, last.UserID, last)
	})
	return &struct{ Body Page[UserView] }{page}, nil
}

// getMember loads a member of the context's tenant with its user; another
// tenant's user is not found.
func getMember(ctx context.Context, db bun.IDB, id uuid.UUID) (*Member, error) {
	m := new(Member)
	err := db.NewSelect().Model(m).Relation("User").Where("member.user_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return m, err
}

func (s *Server) handleGetUser(ctx context.Context, in *userIDInput) (*userOutput, error) {
	ctx, _, err := s.tenantContext(ctx)
	if err != nil {
		return nil, err
	}
	var m *Member
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		m, err = getMember(ctx, db, in.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: memberView(m)}, nil
}

func (s *Server) handleCreateUser(ctx context.Context, in *createUserInput) (*userOutput, error) {
	ctx, p, err := s.tenantContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := authn.Authorize(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	b := in.Body
	if b.Role == authn.RoleOwner && !p.Role.AtLeast(authn.RoleOwner) {
		return nil, fmt.Errorf("%w: only an owner grants the owner role", authn.ErrForbidden)
	}
	email, err := normalizeEmail("body.email", b.Email)
	if err != nil {
		return nil, err
	}
	var hash string
	if b.Password != "" {
		if err := s.checkPassword("body.password", b.Password); err != nil {
			return nil, err
		}
		if hash, err = s.hasher.Hash(ctx, b.Password); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	m := &Member{Role: b.Role, IsActive: true, CreatedAt: now, UpdatedAt: now}
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		user := new(User)
		created := false
		err := tx.NewSelect().Model(user).Where("email = ?", email).Scan(ctx)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			user = &User{ID: uuid.Must(uuid.NewV7()), Email: email, FullName: strings.TrimSpace(b.FullName), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
			if err := s.insertUser(ctx, tx, user); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			// An existing identity joins this tenant; its name and password
			// stay its own.
			n, err := tx.NewSelect().Model((*Member)(nil)).Apply(tenancy.Scope(ctx)).Where("user_id = ?", user.ID).Count(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: this user is already a member", ErrConflict)
			}
		}
		m.UserID, m.User = user.ID, user
		if _, err = tx.NewInsert().Model(m).Exec(ctx); err != nil {
			return err
		}
		// One event: the membership, with the identity's fields and whether
		// the identity is new (no separate user.created, so that adding a
		// member costs one append to the chain).
		changes := audit.Diff(nil, auditMember(m))
		changes["full_name"] = audit.Change{After: user.FullName}
		changes["new_user"] = audit.Change{After: created}
		return s.record(ctx, tx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberCreated,
			ResourceType: "member", ResourceID: user.ID.String(), Changes: changes})
	})
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: memberView(m)}, nil
}

// ownerCount counts the tenant's active owners.
func ownerCount(ctx context.Context, db bun.IDB) (int64, error) {
	return db.NewSelect().Model((*Member)(nil)).Apply(tenancy.Scope(ctx)).Where("role = ?", authn.RoleOwner).Where("is_active").Count(ctx)
}

func (s *Server) handleUpdateUser(ctx context.Context, in *updateUserInput) (*userOutput, error) {
	ctx, p, err := s.tenantContext(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	var m *Member
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Not found comes before forbidden, so that another tenant's ids
		// answer 404 whatever the caller's role.
		m, err = getMember(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		if err := authn.Authorize(ctx, authn.RoleAdmin); err != nil {
			return err
		}
		if in.ID == p.UserID && b.Role != nil && *b.Role != p.Role {
			return invalid("body.role", "you cannot change your own role", *b.Role)
		}
		if m.Role == authn.RoleOwner && !p.Role.AtLeast(authn.RoleOwner) {
			return fmt.Errorf("%w: only an owner changes an owner", authn.ErrForbidden)
		}
		if b.Role != nil && *b.Role == authn.RoleOwner && m.Role != authn.RoleOwner && !p.Role.AtLeast(authn.RoleOwner) {
			return fmt.Errorf("%w: only an owner grants the owner role", authn.ErrForbidden)
		}
		losesOwner := m.Role == authn.RoleOwner && m.IsActive &&
			((b.Role != nil && *b.Role != authn.RoleOwner) || (b.IsActive != nil && !*b.IsActive))
		if losesOwner {
			n, err := ownerCount(ctx, tx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastOwner
			}
		}
		before := auditMember(m)
		beforeName := m.User.FullName
		now := s.now().UTC()
		q := tx.NewUpdate().Model(m).WherePK().Set("updated_at = ?", now)
		changed := false
		if b.Role != nil && *b.Role != m.Role {
			m.Role = *b.Role
			q = q.Set("role = ?", m.Role)
			changed = true
		}
		if b.IsActive != nil && *b.IsActive != m.IsActive {
			m.IsActive = *b.IsActive
			q = q.Set("is_active = ?", m.IsActive)
			changed = true
		}
		if changed {
			m.UpdatedAt = now
			if _, err := q.Exec(ctx); err != nil {
				return err
			}
		}
		if b.FullName != nil && strings.TrimSpace(*b.FullName) != m.User.FullName {
			m.User.FullName = strings.TrimSpace(*b.FullName)
			m.User.UpdatedAt = now
			if _, err := tx.NewUpdate().Model(m.User).Column("full_name", "updated_at").WherePK().Exec(ctx); err != nil {
				return err
			}
		}
		if err := s.recordMemberUpdate(ctx, tx, m, before, beforeName); err != nil {
			return err
		}
		if b.IsActive != nil && !*b.IsActive {
			// A deactivated member's sessions in this tenant end.
			return s.refresh.RevokeUserTenant(ctx, tx, m.UserID, m.TenantID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: memberView(m)}, nil
}

func (s *Server) handleDeleteUser(ctx context.Context, in *userIDInput) (*struct{}, error) {
	ctx, p, err := s.tenantContext(ctx)
	if err != nil {
		return nil, err
	}
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		m, err := getMember(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		if err := authn.Authorize(ctx, authn.RoleAdmin); err != nil {
			return err
		}
		if m.Role == authn.RoleOwner {
			if !p.Role.AtLeast(authn.RoleOwner) {
				return fmt.Errorf("%w: only an owner removes an owner", authn.ErrForbidden)
			}
			n, err := ownerCount(ctx, tx)
			if err != nil {
				return err
			}
			if n <= 1 && m.IsActive {
				return ErrLastOwner
			}
		}
		if _, err := tx.NewDelete().Model(m).WherePK().Exec(ctx); err != nil {
			return err
		}
		if err := s.record(ctx, tx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberRemoved,
			ResourceType: "member", ResourceID: m.UserID.String(), Changes: audit.Diff(auditMember(m), nil)}); err != nil {
			return err
		}
		return s.refresh.RevokeUserTenant(ctx, tx, m.UserID, m.TenantID)
	})
	return nil, err
}

// recordMemberUpdate records a member's changes: member.role_changed for a
// new role, and member.updated for its state and name.
func (s *Server) recordMemberUpdate(ctx context.Context, tx bun.IDB, m *Member, before memberAudit, beforeName string) error {
	after := auditMember(m)
	id := m.UserID.String()
	if after.Role != before.Role {
		if err := s.record(ctx, tx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberRoleChanged,
			ResourceType: "member", ResourceID: id,
			Changes: map[string]audit.Change{"role": {Before: string(before.Role), After: string(after.Role)}}}); err != nil {
			return err
		}
	}
	before.Role = after.Role
	changes := audit.Diff(before, after)
	if m.User != nil && m.User.FullName != beforeName {
		if changes == nil {
			changes = map[string]audit.Change{}
		}
		changes["full_name"] = audit.Change{Before: beforeName, After: m.User.FullName}
	}
	if changes == nil {
		return nil
	}
	return s.record(ctx, tx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberUpdated,
		ResourceType: "member", ResourceID: id, Changes: changes})
}
