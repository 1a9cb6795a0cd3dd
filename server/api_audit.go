package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// AuditEventView is an audit event as the API shows it.
type AuditEventView struct {
	ID           uuid.UUID               `json:"id"`
	TenantID     uuid.UUID               `json:"tenant_id" doc:"The chain: the tenant, or the nil UUID for the platform chain."`
	Seq          int64                   `json:"seq" doc:"Position in the tenant's chain, from 1."`
	Actor        audit.Actor             `json:"actor"`
	Action       string                  `json:"action" example:"member.role_changed"`
	ResourceType string                  `json:"resource_type"`
	ResourceID   string                  `json:"resource_id"`
	Changes      map[string]audit.Change `json:"changes" doc:"Fields that changed, with before and after values; secrets redacted."`
	RequestID    string                  `json:"request_id"`
	IP           string                  `json:"ip"`
	UserAgent    string                  `json:"user_agent"`
	CreatedAt    time.Time               `json:"created_at"`
	Hash         string                  `json:"hash" doc:"Chain hash of the event, hexadecimal."`
}

type auditTenantParam struct {
	Tenant string `query:"tenant" maxLength:"36" doc:"Superadmins: the tenant whose log to read (the nil UUID for the platform chain); default: the token's tenant."`
}

type listAuditInput struct {
	Tenant        string    `query:"tenant" maxLength:"36" doc:"Superadmins: the tenant whose log to read (the nil UUID for the platform chain); default: the token's tenant."`
	Limit         int       `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Events per page, newest first."`
	Cursor        string    `query:"cursor" maxLength:"128" doc:"next_cursor of the previous page."`
	Actor         string    `query:"actor" maxLength:"64" doc:"Only events of this actor id (a user id)."`
	Action        string    `query:"action" maxLength:"100" doc:"Only events with this action, such as user.created."`
	ResourceType  string    `query:"resource_type" maxLength:"50"`
	ResourceID    string    `query:"resource_id" maxLength:"100"`
	CreatedAfter  time.Time `query:"created_after" doc:"Only events recorded after this time (RFC 3339)."`
	CreatedBefore time.Time `query:"created_before" doc:"Only events recorded before this time (RFC 3339)."`
}

// AuditChainBreak is the first broken link that verification found.
type AuditChainBreak struct {
	Seq     int64     `json:"seq"`
	EventID uuid.UUID `json:"event_id" doc:"The nil UUID when the event is missing."`
	Reason  string    `json:"reason" enum:"hash mismatch,prev-hash mismatch,sequence gap,head mismatch"`
}

type verifyAuditOutput struct {
	Body struct {
		TenantID uuid.UUID        `json:"tenant_id"`
		Valid    bool             `json:"valid"`
		Events   int64            `json:"events" doc:"Events that verified, from seq 1."`
		Broken   *AuditChainBreak `json:"broken" doc:"The first broken link; null when the chain is valid."`
		Unsealed int64            `json:"unsealed" doc:"Events recorded but not chained yet (the server chains events within a second of their commit)."`
	}
}

func (s *Server) registerAudit(api huma.API) {
	tags := []string{"audit"}
	register(s, api, huma.Operation{
		OperationID: "list-audit-logs", Method: http.MethodGet, Path: "/api/audit/logs/", Tags: tags,
		Summary: "The tenant's audit log, newest first (admins and owners; superadmins: any tenant)", Security: bearerAuth,
	}, s.handleListAudit)
	register(s, api, huma.Operation{
		OperationID: "verify-audit-chain", Method: http.MethodGet, Path: "/api/audit/verify/", Tags: tags,
		Summary: "Verify the tenant's audit hash chain", Security: bearerAuth,
	}, s.handleVerifyAudit)
}

// auditChain decides which chain the caller may read: the token's tenant for
// its admins and owners; any tenant (or the platform chain) a superadmin
// names, the platform chain for a superadmin token without a tenant. Another
// tenant is not found; a member with the user role is forbidden.
func (s *Server) auditChain(ctx context.Context, param string) (uuid.UUID, error) {
	p, err := principal(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	if param != "" {
		id, err := uuid.Parse(param)
		if err != nil {
			return uuid.Nil, invalid("query.tenant", "not a tenant id", param)
		}
		if p.Superadmin {
			return id, nil
		}
		if id != p.TenantID {
			return uuid.Nil, ErrNotFound
		}
	}
	if p.TenantID == uuid.Nil {
		if p.Superadmin {
			return uuid.Nil, nil
		}
		return uuid.Nil, tenancy.ErrNoTenant
	}
	ctx, _, err = s.tenantContext(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	if !p.Superadmin {
		if err := authn.Authorize(ctx, authn.RoleAdmin); err != nil {
			return uuid.Nil, fmt.Errorf("%w: admins and owners read the audit log", err)
		}
	}
	return p.TenantID, nil
}

type auditCursor struct {
	Seq int64 `json:"seq"`
}

func (s *Server) handleListAudit(ctx context.Context, in *listAuditInput) (*struct{ Body Page[AuditEventView] }, error) {
	tenant, err := s.auditChain(ctx, in.Tenant)
	if err != nil {
		return nil, err
	}
	var before int64
	if in.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.Cursor)
		var c auditCursor
		if err != nil || json.Unmarshal(b, &c) != nil || c.Seq <= 1 {
			return nil, invalid("query.cursor", publicMessage(ErrBadCursor), in.Cursor)
		}
		before = c.Seq
	}
	q := audit.Query{
		TenantID: tenant, BeforeSeq: before, Limit: in.Limit + 1,
		Action: in.Action, ResourceType: in.ResourceType, ResourceID: in.ResourceID, ActorID: in.Actor,
		CreatedAfter: in.CreatedAfter, CreatedBefore: in.CreatedBefore,
	}
	if _, err := s.SealAudit(ctx); err != nil {
		return nil, err
	}
	var events []audit.Event
	err = s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		events, err = audit.List(ctx, db, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	view := func(ev audit.Event) AuditEventView { return auditEventView(&ev) }
	page := makePage(events, in.Limit, view, func(last audit.Event) string {
		b, _ := json.Marshal(auditCursor{Seq: last.Seq})
		return base64.RawURLEncoding.EncodeToString(b)
	})
	return &struct{ Body Page[AuditEventView] }{page}, nil
}

func auditEventView(ev *audit.Event) AuditEventView {
	changes := ev.Changes
	if changes == nil {
		changes = map[string]audit.Change{}
	}
	return AuditEventView{
		ID: ev.ID, TenantID: ev.TenantID, Seq: ev.Seq, Actor: ev.Actor, Action: ev.Action,
		ResourceType: ev.ResourceType, ResourceID: ev.ResourceID, Changes: changes,
		RequestID: ev.RequestID, IP: ev.IP, UserAgent: ev.UserAgent, CreatedAt: ev.CreatedAt,
		Hash: fmt.Sprintf("%x", ev.Hash),
	}
}

func (s *Server) handleVerifyAudit(ctx context.Context, in *auditTenantParam) (*verifyAuditOutput, error) {
	tenant, err := s.auditChain(ctx, in.Tenant)
	if err != nil {
		return nil, err
	}
	if _, err := s.SealAudit(ctx); err != nil {
		return nil, err
	}
	var res audit.VerifyResult
	var verr error
	err = s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		res, verr = audit.Verify(ctx, db, tenant)
		if errors.Is(verr, audit.ErrChainBroken) {
			return nil
		}
		return verr
	})
	if err != nil {
		return nil, err
	}
	out := &verifyAuditOutput{}
	out.Body.TenantID = tenant
	out.Body.Events = res.Events
	out.Body.Unsealed = res.Unsealed
	out.Body.Valid = verr == nil
	var ce *audit.ChainError
	if errors.As(verr, &ce) {
		out.Body.Broken = &AuditChainBreak{Seq: ce.Seq, EventID: ce.EventID, Reason: ce.Reason}
	}
	return out, nil
}
