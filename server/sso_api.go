package server

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/tenancy"
)

// OIDCConnectionView is a tenant's OIDC provider as the API shows it: the
// client secret is never returned.
type OIDCConnectionView struct {
	Issuer         string     `json:"issuer"`
	ClientID       string     `json:"client_id"`
	Scopes         []string   `json:"scopes"`
	AllowedDomains []string   `json:"allowed_domains"`
	DefaultRole    authn.Role `json:"default_role"`
	HasSecret      bool       `json:"has_client_secret"`
	ReturnURLs     []string   `json:"return_urls"`
	LoginPath      string     `json:"login_path" doc:"Where a browser starts a login."`
	CallbackPath   string     `json:"callback_path" doc:"Redirect URI path to register at the provider (after the server's public URL)."`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// SAMLConnectionView is a tenant's SAML IdP as the API shows it: the SP
// private key is never returned.
type SAMLConnectionView struct {
	IDPEntityID       string                `json:"idp_entity_id"`
	IDPMetadataURL    string                `json:"idp_metadata_url,omitempty" doc:"Where the IdP metadata is fetched from, when it is not given inline."`
	Attributes        saml.AttributeMap     `json:"attributes"`
	RoleMap           map[string]authn.Role `json:"role_map"`
	AllowIDPInitiated bool                  `json:"allow_idp_initiated"`
	DefaultRole       authn.Role            `json:"default_role"`
	ReturnURLs        []string              `json:"return_urls"`
	SPCertificate     string                `json:"sp_certificate" doc:"PEM certificate of the service provider."`
	MetadataPath      string                `json:"metadata_path" doc:"SP metadata for the IdP (after the server's public URL)."`
	LoginPath         string                `json:"login_path"`
	ACSPath           string                `json:"acs_path"`
	UpdatedAt         time.Time             `json:"updated_at"`
}

type ssoTenantInput struct {
	ID uuid.UUID `path:"id"`
}

type ssoOutput struct {
	Body struct {
		OIDC *OIDCConnectionView `json:"oidc"`
		SAML *SAMLConnectionView `json:"saml"`
	}
}

type putOIDCInput struct {
	ID   uuid.UUID `path:"id"`
	Body struct {
		Issuer         string     `json:"issuer" minLength:"1" maxLength:"500"`
		ClientID       string     `json:"client_id" minLength:"1" maxLength:"500"`
		ClientSecret   *string    `json:"client_secret,omitempty" maxLength:"1000" doc:"Absent: keep the stored secret."`
		Scopes         []string   `json:"scopes,omitempty" maxItems:"20"`
		AllowedDomains []string   `json:"allowed_domains,omitempty" maxItems:"100"`
		DefaultRole    authn.Role `json:"default_role,omitempty" enum:"user,admin"`
		ReturnURLs     []string   `json:"return_urls,omitempty" maxItems:"20" doc:"Client URLs a login may end at (?return_to=), with a one-time code to exchange at /api/auth/sso-exchange/."`
	}
}

type putSAMLInput struct {
	ID   uuid.UUID `path:"id"`
	Body struct {
		IDPMetadata       string                `json:"idp_metadata,omitempty" maxLength:"1000000" doc:"The IdP's metadata XML; or give idp_metadata_url."`
		IDPMetadataURL    string                `json:"idp_metadata_url,omitempty" maxLength:"2000" doc:"Where the server fetches the IdP's metadata (https, or http on a trusted network), now and at each test of the connection; or give idp_metadata."`
		Attributes        saml.AttributeMap     `json:"attributes,omitempty"`
		RoleMap           map[string]authn.Role `json:"role_map,omitempty" doc:"Asserted role or group value to member role (user or admin) for new members."`
		AllowIDPInitiated bool                  `json:"allow_idp_initiated,omitempty"`
		DefaultRole       authn.Role            `json:"default_role,omitempty" enum:"user,admin"`
		ReturnURLs        []string              `json:"return_urls,omitempty" maxItems:"20" doc:"Client URLs a login may end at (?return_to=), with a one-time code to exchange at /api/auth/sso-exchange/."`
	}
}

func (s *Server) registerSSO(api huma.API) {
	tags := []string{"sso"}
	s.registerSSOExchange(api)
	s.registerSSOTests(api)
	register(s, api, huma.Operation{
		OperationID: "get-sso", Method: http.MethodGet, Path: "/api/tenants/{id}/sso/", Tags: tags,
		Summary: "The tenant's SSO connections, without secrets (admin)", Security: bearerAuth,
	}, s.handleGetSSO)
	register(s, api, huma.Operation{
		OperationID: "put-sso-oidc", Method: http.MethodPut, Path: "/api/tenants/{id}/sso/oidc/", Tags: tags,
		Summary: "Set the tenant's OpenID Connect provider; discovery is checked (admin)", Security: bearerAuth,
		Errors: []int{http.StatusServiceUnavailable},
	}, s.handlePutOIDC)
	register(s, api, huma.Operation{
		OperationID: "put-sso-saml", Method: http.MethodPut, Path: "/api/tenants/{id}/sso/saml/", Tags: tags,
		Summary: "Set the tenant's SAML IdP; the SP key is generated once (admin)", Security: bearerAuth,
		Description: "Give the IdP's metadata either inline (`idp_metadata`, XML) or by URL (`idp_metadata_url`), not both. " +
			"A URL is fetched now (10 s timeout, at most 1 MiB, redirects followed) and the fetched XML is stored; " +
			"`POST .../sso/saml/test/` fetches it again and stores the new copy, for example after the IdP rolled its certificate. " +
			"Metadata that does not parse, or has no signing certificate, is refused with 422 and the reason. " +
			"http URLs are accepted but nothing authenticates the document then: use https except on a trusted network.",
		Errors: []int{http.StatusServiceUnavailable},
	}, s.handlePutSAML)
	for _, kind := range []string{ssoOIDC, ssoSAML} {
		register(s, api, huma.Operation{
			OperationID: "delete-sso-" + kind, Method: http.MethodDelete, Path: "/api/tenants/{id}/sso/" + kind + "/", Tags: tags,
			Summary: "Remove the tenant's " + strings.ToUpper(kind) + " connection (admin)", Security: bearerAuth,
			DefaultStatus: http.StatusNoContent,
		}, func(ctx context.Context, in *ssoTenantInput) (*struct{}, error) {
			return nil, s.deleteSSO(ctx, in.ID, kind)
		})
	}
}

// ssoAdmin checks that the caller administers the tenant and returns it.
func (s *Server) ssoAdmin(ctx context.Context, id uuid.UUID) (*tenancy.Tenant, *authn.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, role, err := s.tenantRole(ctx, p, id)
	if err != nil {
		return nil, nil, err
	}
	if !p.Superadmin && !role.AtLeast(authn.RoleAdmin) {
		return nil, nil, fmt.Errorf("%w: admins and owners manage SSO", authn.ErrForbidden)
	}
	if s.sso.keys == nil {
		return nil, nil, huma.Error503ServiceUnavailable(publicMessage(ErrSSODisabled))
	}
	return t, p, nil
}

func (s *Server) handleGetSSO(ctx context.Context, in *ssoTenantInput) (*ssoOutput, error) {
	t, _, err := s.ssoAdmin(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	out := &ssoOutput{}
	for _, kind := range []string{ssoOIDC, ssoSAML} {
		c, err := s.loadConnection(ctx, t, kind)
		if errors.Is(err, ErrSSONotSetUp) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if kind == ssoOIDC {
			out.Body.OIDC, err = oidcView(t, c)
		} else {
			out.Body.SAML, err = samlView(t, c)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func oidcView(t *tenancy.Tenant, c *ssoConnection) (*OIDCConnectionView, error) {
	var cfg oidcSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, err
	}
	prefix := "/api/auth/sso/" + t.ID.String() + "/oidc/"
	return &OIDCConnectionView{
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, Scopes: nonNil(cfg.Scopes), AllowedDomains: nonNil(cfg.AllowedDomains),
		DefaultRole: cfg.DefaultRole, HasSecret: c.Secret != "", ReturnURLs: nonNil(cfg.ReturnURLs), LoginPath: prefix + "login/", CallbackPath: prefix + "callback/",
		UpdatedAt: c.UpdatedAt,
	}, nil
}

func samlView(t *tenancy.Tenant, c *ssoConnection) (*SAMLConnectionView, error) {
	var cfg samlSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, err
	}
	prefix := "/api/auth/sso/" + t.ID.String() + "/saml/"
	rm := cfg.RoleMap
	if rm == nil {
		rm = map[string]authn.Role{}
	}
	return &SAMLConnectionView{
		IDPEntityID: cfg.IDPEntityID, IDPMetadataURL: cfg.IDPMetadataURL, Attributes: cfg.Attributes, RoleMap: rm, AllowIDPInitiated: cfg.AllowIDPInitiated,
		DefaultRole: cfg.DefaultRole, ReturnURLs: nonNil(cfg.ReturnURLs), SPCertificate: cfg.Certificate,
		MetadataPath: prefix + "metadata/", LoginPath: prefix + "login/", ACSPath: prefix + "acs/", UpdatedAt: c.UpdatedAt,
	}, nil
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// issuerAllowed requires https, except for loopback hosts (development).
func issuerAllowed(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	return u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1")
}

func (s *Server) handlePutOIDC(ctx context.Context, in *putOIDCInput) (*struct{ Body OIDCConnectionView }, error) {
	t, _, err := s.ssoAdmin(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	if !issuerAllowed(b.Issuer) {
		return nil, invalid("body.issuer", "must be an https URL", b.Issuer)
	}
	if err := checkReturnURLs("body.return_urls", b.ReturnURLs); err != nil {
		return nil, err
	}
	cfg := oidcSettings{Issuer: strings.TrimRight(b.Issuer, "/"), ClientID: b.ClientID, Scopes: b.Scopes,
		AllowedDomains: b.AllowedDomains, DefaultRole: b.DefaultRole, ReturnURLs: b.ReturnURLs}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = authn.RoleUser
	}
	for i, d := range cfg.AllowedDomains {
		cfg.AllowedDomains[i] = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
	}
	// The provider must answer discovery now, not at the first login.
	if _, err := oidc.New(ctx, oidc.Config{Issuer: cfg.Issuer, ClientID: cfg.ClientID, RedirectURL: "https://check.invalid/",
		CookieKey: s.sso.keys.cookie, HTTPClient: s.sso.http}); err != nil {
		return nil, invalid("body.issuer", "OpenID discovery failed: "+publicMessage(err), b.Issuer)
	}
	var secret []byte
	keep := b.ClientSecret == nil
	if !keep {
		secret = []byte(*b.ClientSecret)
	}
	c, err := s.saveConnection(ctx, t, ssoOIDC, cfg, secret, keep, map[string]audit.Change{
		"issuer": {After: cfg.Issuer}, "client_id": {After: cfg.ClientID}, "secret_changed": {After: !keep},
	})
	if err != nil {
		return nil, err
	}
	v, err := oidcView(t, c)
	if err != nil {
		return nil, err
	}
	return &struct{ Body OIDCConnectionView }{*v}, nil
}

func (s *Server) handlePutSAML(ctx context.Context, in *putSAMLInput) (*struct{ Body SAMLConnectionView }, error) {
	t, _, err := s.ssoAdmin(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	var ed *crewjam.EntityDescriptor
	switch {
	case (b.IDPMetadata == "") == (b.IDPMetadataURL == ""):
		return nil, invalid("body", "give exactly one of idp_metadata and idp_metadata_url", nil)
	case b.IDPMetadataURL != "":
		raw, parsed, err := s.fetchIDPMetadata(ctx, b.IDPMetadataURL)
		if err != nil {
			return nil, invalid("body.idp_metadata_url", err.Error(), b.IDPMetadataURL)
		}
		b.IDPMetadata, ed = string(raw), parsed
	default:
		if ed, err = checkIDPMetadata([]byte(b.IDPMetadata)); err != nil {
			return nil, invalid("body.idp_metadata", err.Error(), nil)
		}
	}
	for k, r := range b.RoleMap {
		if r != authn.RoleUser && r != authn.RoleAdmin {
			return nil, invalid("body.role_map."+k, "a mapped role is user or admin", r)
		}
	}
	if err := checkReturnURLs("body.return_urls", b.ReturnURLs); err != nil {
		return nil, err
	}
	cfg := samlSettings{IDPMetadata: b.IDPMetadata, IDPMetadataURL: b.IDPMetadataURL, IDPEntityID: ed.EntityID, Attributes: b.Attributes, RoleMap: b.RoleMap,
		AllowIDPInitiated: b.AllowIDPInitiated, DefaultRole: b.DefaultRole, ReturnURLs: b.ReturnURLs}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = authn.RoleUser
	}
	// The SP key pair is made once and kept across updates, so that the IdP
	// need not be told again.
	var secret []byte
	keep := false
	if old, err := s.loadConnection(ctx, t, ssoSAML); err == nil {
		var oc samlSettings
		if json.Unmarshal([]byte(old.Config), &oc) == nil && oc.Certificate != "" {
			cfg.Certificate, keep = oc.Certificate, true
		}
	} else if !errors.Is(err, ErrSSONotSetUp) {
		return nil, err
	}
	if !keep {
		key, cert, err := saml.GenerateCertificate("saaskit SP "+t.Slug, s.now(), 0)
		if err != nil {
			return nil, err
		}
		if secret, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return nil, err
		}
		cfg.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	c, err := s.saveConnection(ctx, t, ssoSAML, cfg, secret, keep, map[string]audit.Change{
		"idp_entity_id": {After: cfg.IDPEntityID}, "idp_metadata_url": {After: cfg.IDPMetadataURL}, "allow_idp_initiated": {After: cfg.AllowIDPInitiated}, "sp_key_generated": {After: !keep},
	})
	if err != nil {
		return nil, err
	}
	v, err := samlView(t, c)
	if err != nil {
		return nil, err
	}
	return &struct{ Body SAMLConnectionView }{*v}, nil
}

// saveConnection upserts a connection (keeping the stored secret when keep)
// and records the change.
func (s *Server) saveConnection(ctx context.Context, t *tenancy.Tenant, kind string, cfg any, secret []byte, keep bool, changes map[string]audit.Change) (*ssoConnection, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := &ssoConnection{Kind: kind, Config: string(raw), CreatedAt: now, UpdatedAt: now}
	changes["kind"] = audit.Change{After: kind}
	err = s.tx.RunInTx(tenancy.WithTenant(ctx, t), nil, func(ctx context.Context, tx bun.Tx) error {
		old := new(ssoConnection)
		err := tx.NewSelect().Model(old).Where("?TableAlias.kind = ?", kind).Scan(ctx)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		switch {
		case keep && exists:
			c.Secret = old.Secret
		case len(secret) > 0:
			c.Secret = s.sso.keys.seal(t.ID, kind, secret)
		}
		if exists {
			c.CreatedAt = old.CreatedAt
			if _, err := tx.NewUpdate().Model(c).Column("config", "secret", "updated_at").WherePK().Exec(ctx); err != nil {
				return err
			}
		} else if _, err := tx.NewInsert().Model(c).Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: t.ID, Action: ActionSSOConfigured,
			ResourceType: "sso_connection", ResourceID: kind, Changes: changes})
	})
	return c, err
}

func (s *Server) deleteSSO(ctx context.Context, id uuid.UUID, kind string) error {
	t, _, err := s.ssoAdmin(ctx, id)
	if err != nil {
		return err
	}
	return s.tx.RunInTx(tenancy.WithTenant(ctx, t), nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*ssoConnection)(nil)).Where("kind = ?", kind).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.record(ctx, tx, &audit.Event{TenantID: t.ID, Action: ActionSSORemoved,
			ResourceType: "sso_connection", ResourceID: kind, Changes: map[string]audit.Change{"kind": {Before: kind}}})
	})
}
