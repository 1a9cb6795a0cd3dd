package server

import (
	"context"
	"errors"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/google/uuid"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

const bearerScheme = "bearer"

var bearerAuth = []map[string][]string{{bearerScheme: {}}}

func (s *Server) newAPI(mux *http.ServeMux) huma.API {
	cfg := huma.DefaultConfig("saaskit API", Version)
	cfg.OpenAPIPath = "/api/openapi"
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.CreateHooks = nil // no $schema members in responses
	cfg.RejectUnknownQueryParameters = true
	cfg.Info.Description = "Multi-tenant SaaS platform API. Errors are RFC 9457 problem+json."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		bearerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
	}
	api := humago.New(mux, cfg)
	api.UseMiddleware(s.authenticate(api), s.rateLimit)
	s.registerAuth(api)
	s.registerTenants(api)
	s.registerUsers(api)
	s.registerAudit(api)
	s.registerIntegrations(api)
	documentWebhooks(api)
	s.registerSSO(api)
	return api
}

// register adds an operation with the server's defaults: the request body
// limit and, unless public, bearer authentication.
func register[I, O any](s *Server, api huma.API, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	if op.MaxBodyBytes == 0 {
		op.MaxBodyBytes = s.cfg.MaxBodyBytes
	}
	op.Errors = append(op.Errors, http.StatusBadRequest, http.StatusUnprocessableEntity)
	if op.Security != nil {
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound)
	}
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		if err := checkText(reflect.ValueOf(in), ""); err != nil {
			return nil, err
		}
		out, err := h(ctx, in)
		if err != nil {
			return nil, s.toAPIError(ctx, err)
		}
		return out, nil
	})
}

// authenticate verifies the bearer token of operations that declare bearer
// security and puts the principal, and the user as the audit actor, in the
// context. Public operations ignore the
// Authorization header.
func (s *Server) authenticate(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || len(op.Security) == 0 {
			next(ctx)
			return
		}
		token, err := authn.ParseBearer(ctx.Header("Authorization"))
		var p *authn.Principal
		if err == nil {
			p, err = s.verifier.Verify(ctx.Context(), token)
		}
		if err != nil {
			challenge := `Bearer realm="saaskit"`
			msg := "authentication required"
			if !errors.Is(err, authn.ErrTokenMissing) {
				challenge += `, error="invalid_token"`
				msg = "invalid token: " + publicMessage(err)
			}
			// A request that does not authenticate counts as anonymous.
			s.applyLimit(ctx, s.rl.anon, func(ctx huma.Context) {
				ctx.SetHeader("WWW-Authenticate", challenge)
				huma.WriteErr(api, ctx, http.StatusUnauthorized, msg)
			})
			return
		}
		c := authn.WithPrincipal(ctx.Context(), p)
		c = audit.WithActor(c, userActor(p.UserID))
		next(huma.WithContext(ctx, c))
	}
}

// principal returns the authenticated principal.
func principal(ctx context.Context) (*authn.Principal, error) {
	p, ok := authn.PrincipalFromContext(ctx)
	if !ok {
		return nil, authn.ErrUnauthenticated
	}
	return p, nil
}

// tenantContext returns ctx carrying the tenant of the principal's token,
// refusing a suspended tenant.
func (s *Server) tenantContext(ctx context.Context) (context.Context, *authn.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return ctx, nil, err
	}
	if p.TenantID == uuid.Nil {
		return ctx, nil, tenancy.ErrNoTenant
	}
	t, err := s.lookup.LookupTenant(ctx, p.TenantID.String())
	if err != nil {
		return ctx, nil, err
	}
	if t.Status == tenancy.StatusSuspended {
		return ctx, nil, tenancy.ErrTenantSuspended
	}
	return tenancy.WithTenant(ctx, t), p, nil
}
