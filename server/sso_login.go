package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/internal/problem"
	"github.com/saaskit/saaskit/tenancy"
)

// ssoBase is the public base URL of the server: SAASKIT_SSO_PUBLIC_URL, or
// the request's scheme (https behind a trusted proxy that says so) and host.
func (s *Server) ssoBase(r *http.Request) string {
	if s.cfg.SSOPublicURL != "" {
		return strings.TrimRight(s.cfg.SSOPublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && r.Header.Get("X-Forwarded-Proto") == "https" {
		for _, p := range s.proxies {
			if p.Contains(ap.Addr().Unmap()) {
				scheme = "https"
			}
		}
	}
	return scheme + "://" + r.Host
}

// ssoTenant resolves the {tenant} path value (id or slug) to an active
// tenant.
func (s *Server) ssoTenant(r *http.Request) (*tenancy.Tenant, error) {
	if s.sso.keys == nil {
		return nil, ErrSSODisabled
	}
	t, err := s.lookup.LookupTenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return nil, err
	}
	if t.Status == tenancy.StatusSuspended {
		return nil, tenancy.ErrTenantSuspended
	}
	return t, nil
}

func (s *Server) ssoOIDCLogin(w http.ResponseWriter, r *http.Request) {
	t, err := s.ssoTenant(r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	rp, cfg, err := s.relyingParty(r.Context(), t, s.ssoBase(r))
	if err == nil {
		err = s.setReturn(w, r, t, ssoOIDC, cfg.ReturnURLs)
	}
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	u, err := rp.Start(w, r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Server) ssoOIDCCallback(w http.ResponseWriter, r *http.Request) {
	t, err := s.ssoTenant(r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	rp, cfg, err := s.relyingParty(r.Context(), t, s.ssoBase(r))
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	id, err := rp.Finish(w, r)
	if err != nil {
		s.ssoFailed(w, r, t, ssoOIDC, err)
		return
	}
	s.ssoComplete(w, r, t, ssoOIDC, ssoLogin{email: id.Email, name: id.Name, subject: id.Issuer + " " + id.Subject, role: cfg.DefaultRole, returns: cfg.ReturnURLs})
}

func (s *Server) ssoSAMLMetadata(w http.ResponseWriter, r *http.Request) {
	t, err := s.ssoTenant(r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	sp, _, err := s.serviceProvider(r.Context(), t, s.ssoBase(r))
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	sp.ServeMetadata(w, r)
}

func (s *Server) ssoSAMLLogin(w http.ResponseWriter, r *http.Request) {
	t, err := s.ssoTenant(r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	sp, cfg, err := s.serviceProvider(r.Context(), t, s.ssoBase(r))
	if err == nil {
		err = s.setReturn(w, r, t, ssoSAML, cfg.ReturnURLs)
	}
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	u, err := sp.Start(w, r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Server) ssoSAMLACS(w http.ResponseWriter, r *http.Request) {
	t, err := s.ssoTenant(r)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	sp, cfg, err := s.serviceProvider(r.Context(), t, s.ssoBase(r))
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	id, err := sp.Finish(w, r)
	if err != nil {
		s.ssoFailed(w, r, t, ssoSAML, err)
		return
	}
	s.ssoComplete(w, r, t, ssoSAML, ssoLogin{email: id.Email, name: id.Name, subject: id.Issuer + " " + id.NameID, role: mapRole(cfg, id), returns: cfg.ReturnURLs})
}

// mapRole is the role a new member gets from a SAML login: the highest
// role that RoleMap gives the asserted role or one of the groups (owner is
// never granted this way), else the default role.
func mapRole(cfg samlSettings, id *saml.Identity) authn.Role {
	best := authn.Role("")
	for _, v := range append([]string{id.Role}, id.Groups...) {
		r, ok := cfg.RoleMap[v]
		if !ok || r == authn.RoleOwner {
			continue
		}
		if best == "" || r.AtLeast(best) {
			best = r
		}
	}
	if best == "" {
		return cfg.DefaultRole
	}
	return best
}

type ssoLogin struct {
	email, name, subject string
	role                 authn.Role
	returns              []string // the connection's return URLs
}

// ssoComplete provisions or links the member and answers with the same
// token pair as a password login.
func (s *Server) ssoComplete(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant, kind string, l ssoLogin) {
	ctx := r.Context()
	email, err := normalizeEmail("email", l.email)
	if err != nil {
		s.ssoFailed(w, r, t, kind, errors.Join(ErrSSORefused, errors.New("the asserted email is not valid")))
		return
	}
	if l.role == "" || l.role == authn.RoleOwner {
		l.role = authn.RoleUser
	}
	now := s.now()
	user := new(User)
	member := new(Member)
	var refresh, code string
	returnTo := s.returnTo(r, t, l.returns)
	err = s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		ctx, err := s.bindTenant(ctx, tx, t)
		if err != nil {
			return err
		}
		created := false
		err = tx.NewSelect().Model(user).Where("email = ?", email).Scan(ctx)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			*user = User{ID: uuid.Must(uuid.NewV7()), Email: email, FullName: strings.TrimSpace(l.name), CreatedAt: now, UpdatedAt: now}
			if err := s.insertUser(ctx, tx, user); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		err = tx.NewSelect().Model(member).Where("?TableAlias.user_id = ?", user.ID).Scan(ctx)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if !created {
				return ErrSSONotAMember
			}
			*member = Member{UserID: user.ID, Role: l.role, IsActive: true, CreatedAt: now, UpdatedAt: now, User: user}
			if _, err := tx.NewInsert().Model(member).Exec(ctx); err != nil {
				return err
			}
			changes := audit.Diff(nil, auditMember(member))
			changes["full_name"] = audit.Change{After: user.FullName}
			changes["new_user"] = audit.Change{After: true}
			changes["via"] = audit.Change{After: "sso:" + kind}
			if err := s.record(ctx, tx, &audit.Event{TenantID: t.ID, Actor: userActor(user.ID), Action: ActionMemberCreated,
				ResourceType: "member", ResourceID: user.ID.String(), Changes: changes}); err != nil {
				return err
			}
		case err != nil:
			return err
		case !member.IsActive:
			return ErrSSOMemberLocked
		}
		changes := map[string]audit.Change{"method": {After: kind}, "subject": {After: cleanText(l.subject, 300)}}
		if returnTo != "" {
			// The tokens are issued when the client exchanges the code.
			code, err = s.newSSOCode(ctx, tx, user.ID, t.ID)
			changes["one_time_code"] = audit.Change{After: true}
		} else {
			var rec *authn.RefreshToken
			refresh, rec, err = s.refresh.Issue(ctx, tx, user.ID, t.ID)
			if err == nil {
				changes["refresh_family"] = audit.Change{After: rec.FamilyID.String()}
			}
		}
		if err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{
			TenantID: t.ID, Actor: userActor(user.ID), Action: ActionSSOLogin,
			ResourceType: "user", ResourceID: user.ID.String(), Changes: changes,
		})
	})
	if errors.Is(err, ErrSSONotAMember) || errors.Is(err, ErrSSOMemberLocked) {
		s.ssoFailed(w, r, t, kind, err)
		return
	}
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	if returnTo != "" {
		http.SetCookie(w, &http.Cookie{Name: returnCookieName(t), Path: "/api/auth/sso/" + t.ID.String() + "/" + kind + "/", MaxAge: -1})
		u, _ := url.Parse(returnTo) // checked when the connection was saved
		q := u.Query()
		q.Set("code", code)
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	pair, err := s.tokenPair(ctx, user, t.ID, member.Role, refresh)
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(pair)
}

// ssoFailed records a refused SSO login in the tenant's audit chain and
// answers with a problem naming the check that failed.
func (s *Server) ssoFailed(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant, kind string, cause error) {
	reason := ssoReason(cause)
	err := s.tx.RunInTx(tenancy.System(r.Context()), nil, func(ctx context.Context, tx bun.Tx) error {
		return s.record(ctx, tx, &audit.Event{
			TenantID: t.ID, Action: ActionSSOLoginFailed, ResourceType: "tenant", ResourceID: t.ID.String(),
			Actor:   audit.Actor{Type: audit.ActorUser},
			Changes: map[string]audit.Change{"method": {After: kind}, "reason": {After: reason}},
		})
	})
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "sso login refused", "tenant", t.ID.String(), "method", kind, "error", cause.Error(),
		"request_id", RequestIDFromContext(r.Context()))
	status := http.StatusUnauthorized
	if errors.Is(cause, ErrSSONotAMember) || errors.Is(cause, ErrSSOMemberLocked) {
		status = http.StatusForbidden
	}
	problem.Error(w, status, "single sign-on refused: "+reason)
}

// ssoReason is the public reason of a refusal: the message of the most
// precise sentinel error it wraps.
func ssoReason(err error) string {
	for _, e := range []error{
		oidc.ErrMissingState, oidc.ErrStateMismatch, oidc.ErrProviderError, oidc.ErrExchange,
		oidc.ErrTokenInvalid, oidc.ErrNonceMismatch, oidc.ErrEmailNotVerified, oidc.ErrDomainNotAllowed,
		saml.ErrUnsolicited, saml.ErrRequestMismatch, saml.ErrSignature, saml.ErrExpired, saml.ErrAudience,
		saml.ErrRecipient, saml.ErrIssuer, saml.ErrReplayed, saml.ErrNoEmail, saml.ErrInvalidResponse,
		ErrSSONotAMember, ErrSSOMemberLocked,
	} {
		if errors.Is(err, e) {
			return publicMessage(e)
		}
	}
	return "invalid response"
}

// ssoError answers errors that are not refusals of the login itself.
func (s *Server) ssoError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalidInput):
		problem.Error(w, http.StatusBadRequest, publicMessage(err))
	case errors.Is(err, ErrSSODisabled):
		problem.Error(w, http.StatusServiceUnavailable, publicMessage(err))
	case errors.Is(err, ErrSSONotSetUp), errors.Is(err, tenancy.ErrTenantNotFound):
		problem.Error(w, http.StatusNotFound, "no such tenant or SSO connection")
	case errors.Is(err, tenancy.ErrTenantSuspended):
		problem.Error(w, http.StatusForbidden, "the tenant is suspended")
	case errors.Is(err, oidc.ErrConfig), errors.Is(err, saml.ErrConfig):
		s.log.WarnContext(r.Context(), "sso connection unusable", "error", err.Error(), "request_id", RequestIDFromContext(r.Context()))
		problem.Error(w, http.StatusBadGateway, "the identity provider is unreachable or misconfigured")
	default:
		s.log.ErrorContext(r.Context(), "internal error", "error", err.Error(), "request_id", RequestIDFromContext(r.Context()))
		problem.Error(w, http.StatusInternalServerError, "internal error")
	}
}
