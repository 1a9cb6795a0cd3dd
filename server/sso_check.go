package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/danielgtaylor/huma/v2"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/tenancy"
)

// OIDCTestResult is the outcome of a test of a tenant's OIDC connection:
// discovery against its issuer.
type OIDCTestResult struct {
	OK        bool            `json:"ok" doc:"Whether discovery succeeded."`
	Issuer    string          `json:"issuer"`
	Endpoints *oidc.Endpoints `json:"endpoints,omitempty" doc:"What discovery found, when it succeeded."`
	Error     string          `json:"error,omitempty" doc:"Why the test failed."`
}

// SAMLTestResult is the outcome of a test of a tenant's SAML connection:
// its metadata fetched again (when it came from a URL) and parsed.
type SAMLTestResult struct {
	OK           bool              `json:"ok" doc:"Whether the metadata was fetched (if by URL), parsed and holds a signing certificate."`
	MetadataURL  string            `json:"idp_metadata_url,omitempty"`
	Refreshed    bool              `json:"metadata_refreshed" doc:"Whether a newly fetched copy of the metadata, different from the stored one, was stored."`
	IDPEntityID  string            `json:"idp_entity_id,omitempty"`
	Certificates []SAMLCertificate `json:"certificates,omitempty" doc:"The IdP's signing certificates."`
	SSOEndpoints []SAMLEndpoint    `json:"sso_endpoints,omitempty" doc:"The IdP's SingleSignOnService endpoints."`
	Error        string            `json:"error,omitempty" doc:"Why the test failed; the stored metadata is kept."`
}

// SAMLCertificate describes one signing certificate of an IdP.
type SAMLCertificate struct {
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Expired   bool      `json:"expired"`
}

// SAMLEndpoint is one SingleSignOnService of an IdP.
type SAMLEndpoint struct {
	Binding  string `json:"binding"`
	Location string `json:"location"`
}

func (s *Server) registerSSOTests(api huma.API) {
	tags := []string{"sso"}
	register(s, api, huma.Operation{
		OperationID: "test-sso-oidc", Method: http.MethodPost, Path: "/api/tenants/{id}/sso/oidc/test/", Tags: tags,
		Summary: "Test the tenant's OpenID Connect provider: run discovery (admin)", Security: bearerAuth,
		Description: "Answers 200 whether or not the provider answered: `ok` says which, `error` why not.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.handleTestOIDC)
	register(s, api, huma.Operation{
		OperationID: "test-sso-saml", Method: http.MethodPost, Path: "/api/tenants/{id}/sso/saml/test/", Tags: tags,
		Summary: "Test the tenant's SAML IdP: fetch its metadata again (if by URL) and parse it (admin)", Security: bearerAuth,
		Description: "Answers 200 whether or not the metadata is usable: `ok` says which, `error` why not. " +
			"When the metadata came from a URL and the fetched copy is usable and differs from the stored one, it replaces it " +
			"(this is how a rolled IdP certificate is picked up).",
		Errors: []int{http.StatusServiceUnavailable},
	}, s.handleTestSAML)
}

// testedConnection loads the connection an admin tests.
func (s *Server) testedConnection(ctx context.Context, in *ssoTenantInput, kind string) (*tenancy.Tenant, *ssoConnection, error) {
	t, _, err := s.ssoAdmin(ctx, in.ID)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.loadConnection(ctx, t, kind)
	if errors.Is(err, ErrSSONotSetUp) {
		return nil, nil, huma.Error404NotFound(publicMessage(err))
	}
	return t, c, err
}

func (s *Server) handleTestOIDC(ctx context.Context, in *ssoTenantInput) (*struct{ Body OIDCTestResult }, error) {
	_, c, err := s.testedConnection(ctx, in, ssoOIDC)
	if err != nil {
		return nil, err
	}
	var cfg oidcSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, err
	}
	out := &struct{ Body OIDCTestResult }{OIDCTestResult{Issuer: cfg.Issuer}}
	rp, err := oidc.New(ctx, oidc.Config{Issuer: cfg.Issuer, ClientID: cfg.ClientID, RedirectURL: "https://check.invalid/",
		CookieKey: s.sso.keys.cookie, HTTPClient: s.sso.http})
	if err != nil {
		out.Body.Error = "OpenID discovery failed: " + publicMessage(err)
		return out, nil
	}
	ep := rp.Endpoints()
	out.Body.OK, out.Body.Endpoints = true, &ep
	return out, nil
}

func (s *Server) handleTestSAML(ctx context.Context, in *ssoTenantInput) (*struct{ Body SAMLTestResult }, error) {
	t, c, err := s.testedConnection(ctx, in, ssoSAML)
	if err != nil {
		return nil, err
	}
	var cfg samlSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, err
	}
	out := &struct{ Body SAMLTestResult }{SAMLTestResult{MetadataURL: cfg.IDPMetadataURL}}
	res := &out.Body
	var ed *crewjam.EntityDescriptor
	if cfg.IDPMetadataURL != "" {
		raw, parsed, err := s.fetchIDPMetadata(ctx, cfg.IDPMetadataURL)
		if err != nil {
			res.Error = err.Error()
			return out, nil
		}
		ed = parsed
		if string(raw) != cfg.IDPMetadata {
			before := cfg.IDPEntityID
			cfg.IDPMetadata, cfg.IDPEntityID = string(raw), ed.EntityID
			if _, err := s.saveConnection(ctx, t, ssoSAML, cfg, nil, true, map[string]audit.Change{
				"idp_metadata_refreshed": {After: true}, "idp_entity_id": {Before: before, After: cfg.IDPEntityID},
			}); err != nil {
				return nil, err
			}
			res.Refreshed = true
		}
	} else if ed, err = checkIDPMetadata([]byte(cfg.IDPMetadata)); err != nil {
		res.Error = err.Error()
		return out, nil
	}
	res.IDPEntityID = ed.EntityID
	certs, _ := saml.SigningCertificates(ed) // checked above
	now := s.now()
	for _, cert := range certs {
		res.Certificates = append(res.Certificates, SAMLCertificate{Subject: cert.Subject.String(),
			NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), Expired: !now.Before(cert.NotAfter)})
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, e := range d.SingleSignOnServices {
			res.SSOEndpoints = append(res.SSOEndpoints, SAMLEndpoint{Binding: e.Binding, Location: e.Location})
		}
	}
	res.OK = true
	if !slices.ContainsFunc(res.Certificates, func(c SAMLCertificate) bool { return !c.Expired }) {
		res.OK, res.Error = false, "every signing certificate of the IdP has expired"
	}
	return out, nil
}
