package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// ErrInvalidCredentials is the one answer to a wrong email or password, so
// that the answer does not tell which accounts exist.
var ErrInvalidCredentials = errors.New("server: invalid email or password")

type registerInput struct {
	Body struct {
		Email      string `json:"email" format:"email" maxLength:"254" doc:"Email of the new user; it becomes the tenant's owner."`
		Password   string `json:"password" maxLength:"256"`
		FullName   string `json:"full_name" maxLength:"200"`
		TenantName string `json:"tenant_name" minLength:"1" maxLength:"100"`
		TenantSlug string `json:"tenant_slug,omitempty" maxLength:"63" doc:"URL-safe tenant name; derived from tenant_name when absent."`
	}
}

type registerOutput struct {
	Body struct {
		User   UserView   `json:"user"`
		Tenant TenantView `json:"tenant"`
		TokenPair
	}
}

type loginInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"254"`
		Password string `json:"password" maxLength:"256"`
		Tenant   string `json:"tenant,omitempty" maxLength:"63" doc:"Tenant id or slug; default: the user's first membership."`
	}
}

type tokenOutput struct {
	Body TokenPair
}

type refreshInput struct {
	Body struct {
		Refresh string `json:"refresh" minLength:"1" maxLength:"512"`
	}
}

type profileOutput struct {
	Body struct {
		UserView
		Tenant       *TenantView `json:"tenant,omitempty"`
		IsSuperadmin bool        `json:"is_superadmin"`
	}
}

type profilePatchInput struct {
	Body struct {
		FullName        *string `json:"full_name,omitempty" maxLength:"200"`
		Email           *string `json:"email,omitempty" maxLength:"254" format:"email"`
		Password        *string `json:"password,omitempty" maxLength:"256" doc:"New password; needs current_password."`
		CurrentPassword string  `json:"current_password,omitempty" maxLength:"256" doc:"Required to change email or password."`
	}
}

func (s *Server) registerAuth(api huma.API) {
	tags := []string{"auth"}
	register(s, api, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/api/auth/register/", Tags: tags,
		Summary: "Register a user and a new tenant", DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict},
	}, s.handleRegister)
	for _, path := range []string{"/api/auth/login/", "/api/auth/token/"} {
		id, summary := "login", "Log in with email and password"
		if strings.Contains(path, "token") {
			id, summary = "token", "Obtain a token pair (same as login)"
		}
		register(s, api, huma.Operation{
			OperationID: id, Method: http.MethodPost, Path: path, Tags: tags, Summary: summary,
			Errors: []int{http.StatusUnauthorized},
		}, s.handleLogin)
	}
	register(s, api, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/api/auth/token/refresh/", Tags: tags,
		Summary: "Rotate a refresh token", Errors: []int{http.StatusUnauthorized},
	}, s.handleRefresh)
	register(s, api, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/api/auth/logout/", Tags: tags,
		Summary: "Log out: revoke the refresh token's family", DefaultStatus: http.StatusNoContent,
	}, s.handleLogout)
	register(s, api, huma.Operation{
		OperationID: "get-profile", Method: http.MethodGet, Path: "/api/auth/profile/", Tags: tags,
		Summary: "The authenticated user", Security: bearerAuth,
	}, s.handleProfile)
	register(s, api, huma.Operation{
		OperationID: "patch-profile", Method: http.MethodPatch, Path: "/api/auth/profile/", Tags: tags,
		Summary: "Change name, email or password", Security: bearerAuth, Errors: []int{http.StatusConflict},
	}, s.handlePatchProfile)
}

// normalizeEmail lowercases and checks an address.
func normalizeEmail(location, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e[strings.IndexByte(e, '@')+1:], ".") {
		return "", invalid(location, "not a valid email address", email)
	}
	return e, nil
}

func (s *Server) checkPassword(location, pw string) error {
	if err := s.policy.Validate(pw); err != nil {
		return invalid(location, publicMessage(err), nil)
	}
	return nil
}

// bindTenant makes the rest of tx run as tenant t: the context for the hooks
// and, on Postgres, app.tenant_id for row-level security.
func (s *Server) bindTenant(ctx context.Context, tx bun.IDB, t *tenancy.Tenant) (context.Context, error) {
	if s.db.Dialect().Name() == dialect.PG {
		if _, err := tx.ExecContext(ctx, "SELECT set_config('app.tenant_id', ?, true)", t.ID.String()); err != nil {
			return ctx, err
		}
	}
	return tenancy.WithTenant(ctx, t), nil
}

func (s *Server) handleRegister(ctx context.Context, in *registerInput) (*registerOutput, error) {
	b := in.Body
	email, err := normalizeEmail("body.email", b.Email)
	if err != nil {
		return nil, err
	}
	if err := s.checkEmailLimit(ctx, email); err != nil {
		return nil, err
	}
	if err := s.checkPassword("body.password", b.Password); err != nil {
		return nil, err
	}
	slug := b.TenantSlug
	if slug != "" {
		if err := tenancy.ValidSlug(slug); err != nil {
			return nil, invalid("body.tenant_slug", publicMessage(err), slug)
		}
	}
	hash, err := s.hasher.Hash(ctx, b.Password)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	out := &registerOutput{}
	var member *Member
	var tenant *tenancy.Tenant
	var refresh string
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		user := &User{ID: uuid.Must(uuid.NewV7()), Email: email, FullName: strings.TrimSpace(b.FullName), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
		if err := s.insertUser(ctx, tx, user); err != nil {
			return err
		}
		tenant, err = s.createTenant(ctx, tx, strings.TrimSpace(b.TenantName), slug)
		if err != nil {
			return err
		}
		ctx, err = s.bindTenant(ctx, tx, tenant)
		if err != nil {
			return err
		}
		member = &Member{UserID: user.ID, Role: authn.RoleOwner, IsActive: true, CreatedAt: now, UpdatedAt: now, User: user}
		if _, err := tx.NewInsert().Model(member).Exec(ctx); err != nil {
			return err
		}
		// The new user is the actor of its own registration; the events go
		// to the new tenant's chain.
		actor := userActor(user.ID)
		for _, ev := range []*audit.Event{
			{Action: ActionUserCreated, ResourceType: "user", ResourceID: user.ID.String(), Changes: audit.Diff(nil, auditUser(user))},
			{Action: ActionTenantCreated, ResourceType: "tenant", ResourceID: tenant.ID.String(), Changes: audit.Diff(nil, auditTenant(tenant))},
			{Action: ActionMemberCreated, ResourceType: "member", ResourceID: user.ID.String(), Changes: audit.Diff(nil, auditMember(member))},
		} {
			ev.TenantID, ev.Actor = tenant.ID, actor
			if err := s.record(ctx, tx, ev); err != nil {
				return err
			}
		}
		refresh, _, err = s.refresh.Issue(ctx, tx, user.ID, tenant.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	pair, err := s.tokenPair(ctx, member.User, tenant.ID, member.Role, refresh)
	if err != nil {
		return nil, err
	}
	out.Body.User = memberView(member)
	out.Body.Tenant = tenantView(tenant)
	out.Body.TokenPair = *pair
	return out, nil
}

// insertUser inserts a user, answering a taken email with a conflict.
func (s *Server) insertUser(ctx context.Context, db bun.IDB, u *User) error {
	n, err := db.NewSelect().Model((*User)(nil)).Where("email = ?", u.Email).Count(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: a user with this email already exists", ErrConflict)
	}
	if _, err := db.NewInsert().Model(u).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: a user with this email already exists", ErrConflict)
		}
		return err
	}
	return nil
}

// createTenant creates a tenant; with no slug given it derives one from the
// name and adds a suffix until it is free.
func (s *Server) createTenant(ctx context.Context, db bun.IDB, name, slug string) (*tenancy.Tenant, error) {
	t := &tenancy.Tenant{Name: name, Slug: slug}
	if slug != "" {
		return t, s.tenants.Create(ctx, db, t)
	}
	base := tenancy.Slugify(name)
	if len(base) < 2 {
		base = "tenant"
	}
	for i := 0; ; i++ {
		t.Slug = base
		if i > 0 {
			t.Slug = fmt.Sprintf("%s-%s", base, uuid.NewString()[:6])
		}
		// A savepoint an attempt: on Postgres a failed INSERT aborts the
		// transaction, and the next slug could not be tried without one.
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return s.tenants.Create(ctx, tx, t)
		})
		if !errors.Is(err, tenancy.ErrSlugTaken) || i >= 5 {
			return t, err
		}
	}
}

func (s *Server) tokenPair(ctx context.Context, u *User, tenantID uuid.UUID, role authn.Role, refresh string) (*TokenPair, error) {
	c := authn.Claims{Subject: u.ID, TenantID: tenantID, Role: role, Superadmin: u.IsSuperadmin}
	if tenantID == uuid.Nil {
		c.Role = "" // a token without a tenant carries no tenant role
	}
	access, exp, err := s.issuer.Issue(ctx, c)
	if err != nil {
		return nil, err
	}
	return &TokenPair{Access: access, Refresh: refresh, TokenType: "Bearer", ExpiresIn: int(math.Ceil(exp.Sub(s.now()).Seconds()))}, nil
}

func (s *Server) handleLogin(ctx context.Context, in *loginInput) (*tokenOutput, error) {
	email := strings.ToLower(strings.TrimSpace(in.Body.Email))
	if err := s.checkEmailLimit(ctx, email); err != nil {
		return nil, err
	}
	sys := tenancy.System(ctx)
	user := new(User)
	err := s.tx.Read(sys, func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(user).Where("email = ?", email).Limit(1).Scan(ctx)
	})
	if errors.Is(err, sql.ErrNoRows) {
		s.hasher.VerifyDummy(ctx, in.Body.Password)
		return nil, s.loginFailed(ctx, nil, in.Body.Tenant, "unknown_email")
	}
	if err != nil {
		return nil, err
	}
	if user.PasswordHash == "" {
		s.hasher.VerifyDummy(ctx, in.Body.Password)
		return nil, s.loginFailed(ctx, user, in.Body.Tenant, "no_password")
	}
	ok, _, err := s.hasher.Verify(ctx, in.Body.Password, user.PasswordHash)
	if err != nil && !errors.Is(err, authn.ErrPasswordMismatch) {
		return nil, err
	}
	if !ok {
		return nil, s.loginFailed(ctx, user, in.Body.Tenant, "wrong_password")
	}
	var tenantID uuid.UUID
	role := authn.RoleUser
	var refresh string
	err = s.tx.RunInTx(sys, nil, func(ctx context.Context, tx bun.Tx) error {
		m, err := s.loginMembership(ctx, tx, user, in.Body.Tenant)
		if err != nil {
			return err
		}
		if m != nil {
			tenantID, role = m.TenantID, m.Role
		}
		var rec *authn.RefreshToken
		refresh, rec, err = s.refresh.Issue(ctx, tx, user.ID, tenantID)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{
			TenantID: tenantID, Actor: userActor(user.ID), Action: ActionLoginSucceeded,
			ResourceType: "user", ResourceID: user.ID.String(),
			Changes: map[string]audit.Change{"refresh_family": {After: rec.FamilyID.String()}},
		})
	})
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, s.loginFailed(ctx, user, in.Body.Tenant, "no_membership")
	}
	if err != nil {
		return nil, err
	}
	pair, err := s.tokenPair(ctx, user, tenantID, role, refresh)
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: *pair}, nil
}

// loginMembership finds the active membership a login enters: the named
// tenant's, or the user's first. A superadmin without memberships logs in
// without a tenant.
func (s *Server) loginMembership(ctx context.Context, tx bun.IDB, user *User, tenant string) (*Member, error) {
	m := new(Member)
	q := tx.NewSelect().Model(m).Where("?TableAlias.user_id = ?", user.ID).Where("?TableAlias.is_active")
	if tenant != "" {
		t, err := s.lookup.LookupTenant(ctx, tenant)
		if err != nil {
			return nil, ErrInvalidCredentials
		}
		q = q.Where("?TableAlias.tenant_id = ?", t.ID)
	}
	err := q.OrderExpr("?TableAlias.created_at ASC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		if user.IsSuperadmin && tenant == "" {
			return nil, nil
		}
		return nil, ErrInvalidCredentials
	}
	return m, err
}

func (s *Server) handleRefresh(ctx context.Context, in *refreshInput) (*tokenOutput, error) {
	var user User
	var m *Member
	var next string
	var reuse error
	sys := tenancy.System(ctx)
	err := s.tx.RunInTx(sys, nil, func(ctx context.Context, tx bun.Tx) error {
		tok, rec, err := s.refresh.Rotate(ctx, tx, in.Body.Refresh)
		if errors.Is(err, authn.ErrRefreshReuse) {
			// The family was revoked in this transaction: commit that, with
			// its event.
			reuse = err
			return s.recordReuse(ctx, tx, in.Body.Refresh)
		}
		if err != nil {
			return err
		}
		next = tok
		if err := tx.NewSelect().Model(&user).Where("id = ?", rec.UserID).Scan(ctx); err != nil {
			return err
		}
		if rec.TenantID == uuid.Nil {
			return nil
		}
		m = new(Member)
		err = tx.NewSelect().Model(m).Where("?TableAlias.tenant_id = ? AND ?TableAlias.user_id = ? AND ?TableAlias.is_active", rec.TenantID, rec.UserID).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return authn.ErrRefreshRevoked
		}
		return err
	})
	if err == nil {
		err = reuse
	}
	if err != nil {
		return nil, err
	}
	tenantID, role := uuid.Nil, authn.RoleUser
	if m != nil {
		tenantID, role = m.TenantID, m.Role
	}
	pair, err := s.tokenPair(ctx, &user, tenantID, role, next)
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: *pair}, nil
}

func (s *Server) handleLogout(ctx context.Context, in *refreshInput) (*struct{}, error) {
	err := s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		return s.refresh.RevokeFamily(ctx, tx, in.Body.Refresh)
	})
	if errors.Is(err, authn.ErrRefreshInvalid) {
		return nil, nil // logging out twice is not an error
	}
	return nil, err
}

func (s *Server) loadProfile(ctx context.Context, db bun.IDB, p *authn.Principal) (*profileOutput, error) {
	out := &profileOutput{}
	var user User
	if err := db.NewSelect().Model(&user).Where("id = ?", p.UserID).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, authn.ErrUnauthenticated
		}
		return nil, err
	}
	out.Body.IsSuperadmin = user.IsSuperadmin
	out.Body.UserView = UserView{ID: user.ID, Email: user.Email, FullName: user.FullName, Role: p.Role, IsActive: true, CreatedAt: user.CreatedAt, UpdatedAt: user.UpdatedAt}
	if t, ok := tenancy.FromContext(ctx); ok {
		m := &Member{User: &user}
		if err := db.NewSelect().Model(m).Where("?TableAlias.user_id = ?", p.UserID).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, authn.ErrUnauthenticated
			}
			return nil, err
		}
		m.User = &user
		out.Body.UserView = memberView(m)
		tv := tenantView(t)
		out.Body.Tenant = &tv
	}
	return out, nil
}

// profileContext is the tenant context when the token has a tenant, and a
// plain one for a superadmin token without.
func (s *Server) profileContext(ctx context.Context) (context.Context, *authn.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return ctx, nil, err
	}
	if p.TenantID == uuid.Nil {
		return tenancy.System(ctx), p, nil
	}
	return s.tenantContext(ctx)
}

func (s *Server) handleProfile(ctx context.Context, _ *struct{}) (*profileOutput, error) {
	ctx, p, err := s.profileContext(ctx)
	if err != nil {
		return nil, err
	}
	var out *profileOutput
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		out, err = s.loadProfile(ctx, db, p)
		return err
	})
	return out, err
}

func (s *Server) handlePatchProfile(ctx context.Context, in *profilePatchInput) (*profileOutput, error) {
	ctx, p, err := s.profileContext(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	var email, hash string
	if b.Email != nil {
		if email, err = normalizeEmail("body.email", *b.Email); err != nil {
			return nil, err
		}
	}
	if b.Password != nil {
		if err := s.checkPassword("body.password", *b.Password); err != nil {
			return nil, err
		}
	}
	if (b.Email != nil || b.Password != nil) && b.CurrentPassword == "" {
		return nil, invalid("body.current_password", "required to change email or password", nil)
	}
	var user User
	if err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(&user).Where("id = ?", p.UserID).Scan(ctx)
	}); err != nil {
		return nil, err
	}
	if b.CurrentPassword != "" {
		ok, _, err := s.hasher.Verify(ctx, b.CurrentPassword, user.PasswordHash)
		if err != nil && !errors.Is(err, authn.ErrPasswordMismatch) && !errors.Is(err, authn.ErrMalformedHash) {
			return nil, err
		}
		if !ok {
			return nil, invalid("body.current_password", "does not match", nil)
		}
	}
	if b.Password != nil {
		if hash, err = s.hasher.Hash(ctx, *b.Password); err != nil {
			return nil, err
		}
	}
	var out *profileOutput
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewUpdate().Model((*User)(nil)).Where("id = ?", p.UserID).Set("updated_at = ?", s.now().UTC())
		if b.FullName != nil {
			q = q.Set("full_name = ?", strings.TrimSpace(*b.FullName))
		}
		if email != "" && email != user.Email {
			n, err := tx.NewSelect().Model((*User)(nil)).Where("email = ?", email).Count(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: a user with this email already exists", ErrConflict)
			}
			q = q.Set("email = ?", email)
		}
		if hash != "" {
			q = q.Set("password_hash = ?", hash)
		}
		if _, err := q.Exec(ctx); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: a user with this email already exists", ErrConflict)
			}
			return err
		}
		if hash != "" {
			if err := s.refresh.RevokeUser(ctx, tx, p.UserID); err != nil {
				return err
			}
		}
		out, err = s.loadProfile(ctx, tx, p)
		if err != nil {
			return err
		}
		return s.recordProfileChange(ctx, tx, &user, out, hash != "")
	})
	return out, err
}

// recordProfileChange records the events of a profile change in the chain
// of the token's tenant (the platform chain for a token without one):
// user.updated for name and email, user.password_changed for a new password,
// whose event names the change and nothing of either password.
func (s *Server) recordProfileChange(ctx context.Context, tx bun.IDB, before *User, out *profileOutput, password bool) error {
	tenant, _ := tenancy.IDFromContext(ctx)
	after := *before
	after.Email, after.FullName = out.Body.Email, out.Body.FullName
	if changes := audit.Diff(auditUser(before), auditUser(&after)); changes != nil {
		if err := s.record(ctx, tx, &audit.Event{TenantID: tenant, Action: ActionUserUpdated,
			ResourceType: "user", ResourceID: before.ID.String(), Changes: changes}); err != nil {
			return err
		}
	}
	if !password {
		return nil
	}
	return s.record(ctx, tx, &audit.Event{TenantID: tenant, Action: ActionUserPasswordChanged,
		ResourceType: "user", ResourceID: before.ID.String(),
		Changes: map[string]audit.Change{"password": {Before: audit.Redacted, After: audit.Redacted}}})
}

// loginFailed records a failed login in its own transaction and returns
// ErrInvalidCredentials, or the error of recording it (so that a login is
// never refused without its trace). The event goes to the chain of the
// user's tenant (the one named in the request if the user belongs to it,
// else the first membership) and to the platform chain for an unknown user.
// It never holds the password; the email is recorded only through the id of
// an existing user: an unknown address is left out, since it is often a
// password typed in the wrong field.
func (s *Server) loginFailed(ctx context.Context, user *User, tenantKey, reason string) error {
	err := s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		ev := &audit.Event{Action: ActionLoginFailed, ResourceType: "user",
			Actor:   audit.Actor{Type: audit.ActorUser},
			Changes: map[string]audit.Change{"reason": {After: reason}}}
		if user != nil {
			ev.Actor.ID, ev.ResourceID = user.ID.String(), user.ID.String()
			tenant, err := s.failedLoginTenant(ctx, tx, user, tenantKey)
			if err != nil {
				return err
			}
			ev.TenantID = tenant
		}
		return s.record(ctx, tx, ev)
	})
	if err != nil {
		return err
	}
	return ErrInvalidCredentials
}

// failedLoginTenant is the tenant whose chain records a failed login of
// user: the requested tenant when the user is a member, else the user's
// first membership, else none (the platform chain).
func (s *Server) failedLoginTenant(ctx context.Context, tx bun.IDB, user *User, tenantKey string) (uuid.UUID, error) {
	q := tx.NewSelect().Model((*Member)(nil)).Column("tenant_id").Where("user_id = ?", user.ID)
	if tenantKey != "" {
		if t, err := s.lookup.LookupTenant(ctx, tenantKey); err == nil {
			var id uuid.UUID
			err := tx.NewSelect().Model((*Member)(nil)).Column("tenant_id").
				Where("user_id = ? AND tenant_id = ?", user.ID, t.ID).Limit(1).Scan(ctx, &id)
			if err == nil {
				return id, nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return uuid.Nil, err
			}
		}
	}
	var id uuid.UUID
	err := q.OrderExpr("created_at ASC").Limit(1).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return uuid.Nil, nil
	}
	return id, err
}

// recordReuse records the reuse of a rotated refresh token, in the
// transaction that revoked its family, in the chain of the family's tenant.
func (s *Server) recordReuse(ctx context.Context, tx bun.IDB, token string) error {
	rec := new(authn.RefreshToken)
	if err := tx.NewSelect().Model(rec).Where("token_hash = ?", authn.HashRefreshToken(token)).Scan(ctx); err != nil {
		return err
	}
	return s.record(ctx, tx, &audit.Event{
		TenantID: rec.TenantID, Actor: userActor(rec.UserID), Action: ActionRefreshReuseDetected,
		ResourceType: "user", ResourceID: rec.UserID.String(),
		Changes: map[string]audit.Change{"refresh_family": {Before: "active", After: "revoked"}, "family_id": {After: rec.FamilyID.String()}},
	})
}

// isUniqueViolation recognises a unique constraint failure on both databases.
func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") ||
		strings.Contains(msg, "duplicate key value")
}
