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

var tenantOrderings = orderings{
	"":           {},
	"created_at": {column: "t.created_at", isTime: true, value: func(v any) string { return timeCursor(v.(*tenancy.Tenant).CreatedAt) }},
	"name":       {column: "t.name", value: func(v any) string { return v.(*tenancy.Tenant).Name }},
	"slug":       {column: "t.slug", value: func(v any) string { return v.(*tenancy.Tenant).Slug }},
}

type listTenantsInput struct {
	ListParams
	Status   string `query:"status" enum:"active,suspended"`
	Plan     string `query:"plan" maxLength:"50"`
	Ordering string `query:"ordering" enum:"created_at,-created_at,name,-name,slug,-slug" doc:"Sort order; default: by id (creation order)."`
}

type tenantIDInput struct {
	ID uuid.UUID `path:"id"`
}

type tenantOutput struct {
	Body TenantView
}

type createTenantInput struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100"`
		Slug string `json:"slug,omitempty" maxLength:"63"`
	}
}

type tenantPatch struct {
	Name   *string         `json:"name,omitempty" minLength:"1" maxLength:"100"`
	Slug   *string         `json:"slug,omitempty" maxLength:"63"`
	Status *tenancy.Status `json:"status,omitempty" enum:"active,suspended" doc:"Superadmins only."`
	Plan   *string         `json:"plan,omitempty" maxLength:"50" doc:"Superadmins only."`
}

type patchTenantInput struct {
	ID   uuid.UUID `path:"id"`
	Body tenantPatch
}

type putTenantInput struct {
	ID   uuid.UUID `path:"id"`
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100"`
		Slug string `json:"slug" maxLength:"63"`
	}
}

func (s *Server) registerTenants(api huma.API) {
	tags := []string{"tenants"}
	register(s, api, huma.Operation{
		OperationID: "list-tenants", Method: http.MethodGet, Path: "/api/tenants/", Tags: tags,
		Summary: "List tenants: all for superadmins, one's own otherwise", Security: bearerAuth,
	}, s.handleListTenants)
	register(s, api, huma.Operation{
		OperationID: "create-tenant", Method: http.MethodPost, Path: "/api/tenants/", Tags: tags,
		Summary: "Create a tenant owned by the caller", Security: bearerAuth, DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict},
	}, s.handleCreateTenant)
	register(s, api, huma.Operation{
		OperationID: "get-tenant", Method: http.MethodGet, Path: "/api/tenants/{id}/", Tags: tags,
		Summary: "A tenant the caller belongs to", Security: bearerAuth,
	}, s.handleGetTenant)
	register(s, api, huma.Operation{
		OperationID: "update-tenant", Method: http.MethodPatch, Path: "/api/tenants/{id}/", Tags: tags,
		Summary: "Change a tenant (admin; status and plan: superadmin)", Security: bearerAuth, Errors: []int{http.StatusConflict},
	}, s.handlePatchTenant)
	register(s, api, huma.Operation{
		OperationID: "replace-tenant", Method: http.MethodPut, Path: "/api/tenants/{id}/", Tags: tags,
		Summary: "Replace a tenant's name and slug (admin)", Security: bearerAuth, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *putTenantInput) (*tenantOutput, error) {
		return s.handlePatchTenant(ctx, &patchTenantInput{ID: in.ID, Body: tenantPatch{Name: &in.Body.Name, Slug: &in.Body.Slug}})
	})
	register(s, api, huma.Operation{
		OperationID: "delete-tenant", Method: http.MethodDelete, Path: "/api/tenants/{id}/", Tags: tags,
		Summary: "Delete a tenant and its data (owner)", Security: bearerAuth, DefaultStatus: http.StatusNoContent,
	}, s.handleDeleteTenant)
}

// tenantRole returns the caller's role in tenant id, reading the membership
// with system access; a tenant the caller does not belong to is not found
// (superadmins see every tenant, with no role in it).
func (s *Server) tenantRole(ctx context.Context, p *authn.Principal, id uuid.UUID) (*tenancy.Tenant, authn.Role, error) {
	var t *tenancy.Tenant
	var role authn.Role
	err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		var err error
		t, err = s.tenants.Get(ctx, db, id)
		if err != nil {
			return err
		}
		m := new(Member)
		err = db.NewSelect().Model(m).Where("?TableAlias.tenant_id = ? AND ?TableAlias.user_id = ? AND ?TableAlias.is_active", id, p.UserID).Scan(ctx)
		if err == nil {
			role = m.Role
			return nil
		}
		if errors.Is(err, sql.ErrNoRows) {
			if p.Superadmin {
				return nil
			}
			return ErrNotFound
		}
		return err
	})
	return t, role, err
}

func (s *Server) handleListTenants(ctx context.Context, in *listTenantsInput) (*struct{ Body Page[TenantView] }, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := decodeCursor(in.Cursor, in.Ordering)
	if err != nil {
		return nil, invalid("query.cursor", publicMessage(err), in.Cursor)
	}
	var rows []*tenancy.Tenant
	err = s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		q := db.NewSelect().Model(&rows).ModelTableExpr("tenants AS t").Column("t.*")
		if !p.Superadmin {
			q = q.Where("t.id IN (SELECT m.tenant_id FROM members AS m WHERE m.user_id = ? AND m.is_active)", p.UserID)
		}
		if in.Status != "" {
			q = q.Where("t.status = ?", in.Status)
		}
		if in.Plan != "" {
			q = q.Where("t.plan = ?", in.Plan)
		}
		if in.Search != "" {
			pat := likePattern(in.Search)
			q = q.Where(`(lower(t.name) LIKE ? ESCAPE '\' OR lower(t.slug) LIKE ? ESCAPE '\')`, pat, pat)
		}
		if !in.CreatedAfter.IsZero() {
			q = q.Where("t.created_at > ?", in.CreatedAfter.UTC())
		}
		if !in.CreatedBefore.IsZero() {
			q = q.Where("t.created_at < ?", in.CreatedBefore.UTC())
		}
		q, err := keyset(q, tenantOrderings, in.Ordering, "t.id", cur)
		if err != nil {
			return err
		}
		return q.Limit(int64(in.Limit + 1)).Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	page := makePage(rows, in.Limit, tenantView, func(last *tenancy.Tenant) string {
		return tenantOrderings.cursorAfter(in.Ordering, last.ID, last)
	})
	return &struct{ Body Page[TenantView] }{page}, nil
}

func (s *Server) handleCreateTenant(ctx context.Context, in *createTenantInput) (*tenantOutput, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if in.Body.Slug != "" {
		if err := tenancy.ValidSlug(in.Body.Slug); err != nil {
			return nil, invalid("body.slug", publicMessage(err), in.Body.Slug)
		}
	}
	var t *tenancy.Tenant
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		t, err = s.createTenant(ctx, tx, strings.TrimSpace(in.Body.Name), in.Body.Slug)
		if err != nil {
			return err
		}
		ctx, err = s.bindTenant(ctx, tx, t)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		m := &Member{UserID: p.UserID, Role: authn.RoleOwner, IsActive: true, CreatedAt: now, UpdatedAt: now}
		if _, err = tx.NewInsert().Model(m).Exec(ctx); err != nil {
			return err
		}
		if err := s.record(ctx, tx, &audit.Event{TenantID: t.ID, Action: ActionTenantCreated,
			ResourceType: "tenant", ResourceID: t.ID.String(), Changes: audit.Diff(nil, auditTenant(t))}); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: t.ID, Action: ActionMemberCreated,
			ResourceType: "member", ResourceID: p.UserID.String(), Changes: audit.Diff(nil, auditMember(m))})
	})
	if err != nil {
		return nil, err
	}
	return &tenantOutput{Body: tenantView(t)}, nil
}

func (s *Server) handleGetTenant(ctx context.Context, in *tenantIDInput) (*tenantOutput, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	t, _, err := s.tenantRole(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	return &tenantOutput{Body: tenantView(t)}, nil
}

func (s *Server) handlePatchTenant(ctx context.Context, in *patchTenantInput) (*tenantOutput, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	t, role, err := s.tenantRole(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	oldSlug := t.Slug
	defer s.lookup.Forget(oldSlug)
	before := auditTenant(t)
	if !p.Superadmin && !role.AtLeast(authn.RoleAdmin) {
		return nil, fmt.Errorf("%w: admins and owners change a tenant", authn.ErrForbidden)
	}
	b := in.Body
	if (b.Status != nil || b.Plan != nil) && !p.Superadmin {
		return nil, fmt.Errorf("%w: only a superadmin changes status or plan", authn.ErrForbidden)
	}
	if b.Slug != nil {
		if err := tenancy.ValidSlug(*b.Slug); err != nil {
			return nil, invalid("body.slug", publicMessage(err), *b.Slug)
		}
		t.Slug = *b.Slug
	}
	if b.Name != nil {
		t.Name = strings.TrimSpace(*b.Name)
	}
	if b.Status != nil {
		t.Status = *b.Status
	}
	if b.Plan != nil {
		t.Plan = *b.Plan
	}
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.tenants.Update(ctx, tx, t); err != nil {
			return err
		}
		changes := audit.Diff(before, auditTenant(t))
		if changes == nil {
			return nil
		}
		return s.record(ctx, tx, &audit.Event{TenantID: t.ID, Action: ActionTenantUpdated,
			ResourceType: "tenant", ResourceID: t.ID.String(), Changes: changes})
	})
	if err != nil {
		return nil, err
	}
	s.forgetTenant(t)
	return &tenantOutput{Body: tenantView(t)}, nil
}

func (s *Server) handleDeleteTenant(ctx context.Context, in *tenantIDInput) (*struct{}, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	t, role, err := s.tenantRole(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	if !p.Superadmin && !role.AtLeast(authn.RoleOwner) {
		return nil, fmt.Errorf("%w: only an owner deletes a tenant", authn.ErrForbidden)
	}
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		ctx, err := s.bindTenant(ctx, tx, t)
		if err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*Member)(nil)).Where("1 = 1").Exec(ctx); err != nil {
			return err
		}
		if err := s.tenants.Delete(tenancy.System(ctx), tx, t.ID); err != nil {
			return err
		}
		// The deletion closes the tenant's own chain (which outlives it, for
		// superadmins) and is noted in the platform chain.
		for _, chain := range []uuid.UUID{t.ID, uuid.Nil} {
			if err := s.record(ctx, tx, &audit.Event{TenantID: chain, Action: ActionTenantDeleted,
				ResourceType: "tenant", ResourceID: t.ID.String(), Changes: audit.Diff(auditTenant(t), nil)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.forgetTenant(t)
	return nil, nil
}

// forgetTenant drops t from this replica's tenant cache; other replicas see
// the change when their entries expire (a few seconds).
func (s *Server) forgetTenant(t *tenancy.Tenant) {
	s.lookup.Forget(t.ID.String())
	s.lookup.Forget(t.Slug)
}
