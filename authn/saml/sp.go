package saml

import (
	"crypto"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

// DefaultCookieName is the name of the login cookie when Config.CookieName
// is empty.
const DefaultCookieName = "saaskit_saml"

// DefaultLoginTimeout is how long a started login stays valid when
// Config.LoginTimeout is zero.
const DefaultLoginTimeout = 10 * time.Minute

// maxMetadata bounds the IdP metadata document.
const maxMetadata = 1 << 20

// Config configures a [ServiceProvider] for one IdP (one tenant's IdP, in a
// multi-tenant service). The zero value of every optional field is the
// documented default.
type Config struct {
	// MetadataURL and ACSURL are the absolute URLs where this service
	// provider serves its metadata and receives responses. Required.
	MetadataURL string
	ACSURL      string
	// EntityID names this service provider to the IdP; default MetadataURL.
	EntityID string
	// Key and Certificate are the service provider's key pair, published in
	// its metadata (see [GenerateCertificate]). Key must be an RSA or ECDSA
	// key. Required.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// IDPMetadata is the IdP's metadata XML: an EntityDescriptor, or an
	// EntitiesDescriptor holding one IdP. Its signing certificates are the
	// only keys whose signatures are accepted. Required.
	IDPMetadata []byte
	// Attributes maps assertion attributes to the fields of an Identity.
	Attributes AttributeMap
	// AllowIDPInitiated accepts responses that answer no request of this
	// browser (IdP-initiated login). Off by default: such responses are
	// refused with ErrUnsolicited.
	AllowIDPInitiated bool
	// ReplayCache records accepted assertion IDs; default a
	// MemoryReplayCache of this service provider alone.
	ReplayCache ReplayCache

	// CookieKey signs the login cookie (HMAC-SHA256). At least 32 bytes.
	// Required.
	CookieKey []byte
	// CookieName is the login cookie's name; default DefaultCookieName.
	CookieName string
	// CookiePath is the login cookie's path; default "/". It must cover
	// ACSURL.
	CookiePath string
	// LoginTimeout bounds the time between Start and Finish; default
	// DefaultLoginTimeout.
	LoginTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Identity is the verified result of a login.
type Identity struct {
	// Issuer is the IdP's entity id; NameID the subject it asserted.
	Issuer string
	NameID string
	// Email is mapped from the attributes (or the NameID, when its format is
	// emailAddress); never empty.
	Email string
	// Name, Role and Groups are mapped from the attributes; empty when
	// absent.
	Name   string
	Role   string
	Groups []string
	// SessionIndex is the IdP's session, for single logout.
	SessionIndex string
}

// ServiceProvider is a SAML 2.0 service provider for one IdP. It is safe
// for concurrent use.
type ServiceProvider struct {
	cfg     Config
	sp      *crewjam.ServiceProvider
	binding string
}

// New checks cfg and parses the IdP metadata. The errors it returns wrap
// [ErrConfig].
func New(cfg Config) (*ServiceProvider, error) {
	switch {
	case cfg.MetadataURL == "" || cfg.ACSURL == "":
		return nil, fmt.Errorf("%w: metadata and ACS URLs required", ErrConfig)
	case cfg.Key == nil || cfg.Certificate == nil:
		return nil, fmt.Errorf("%w: key and certificate required", ErrConfig)
	case len(cfg.CookieKey) < 32:
		return nil, fmt.Errorf("%w: cookie key must have at least 32 bytes", ErrConfig)
	}
	mdURL, err := url.Parse(cfg.MetadataURL)
	if err != nil || !mdURL.IsAbs() {
		return nil, fmt.Errorf("%w: metadata URL must be absolute", ErrConfig)
	}
	acsURL, err := url.Parse(cfg.ACSURL)
	if err != nil || !acsURL.IsAbs() {
		return nil, fmt.Errorf("%w: ACS URL must be absolute", ErrConfig)
	}
	idp, err := ParseMetadata(cfg.IDPMetadata)
	if err != nil {
		return nil, err
	}
	if cfg.EntityID == "" {
		cfg.EntityID = cfg.MetadataURL
	}
	if cfg.ReplayCache == nil {
		cfg.ReplayCache = &MemoryReplayCache{Now: cfg.Now}
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sp := &crewjam.ServiceProvider{
		EntityID:                         cfg.EntityID,
		Key:                              cfg.Key,
		Certificate:                      cfg.Certificate,
		MetadataURL:                      *mdURL,
		AcsURL:                           *acsURL,
		IDPMetadata:                      idp,
		AllowIDPInitiated:                cfg.AllowIDPInitiated,
		AssertionConsumerServiceBindings: []string{crewjam.HTTPPostBinding},
		RejectSHA1Signatures:             true,
		ReplayCache:                      cfg.ReplayCache,
		Clock:                            dsig.NewFakeClock(clock{Clock: clockwork.NewRealClock(), now: cfg.Now}),
		AuthnNameIDFormat:                crewjam.UnspecifiedNameIDFormat,
	}
	return &ServiceProvider{cfg: cfg, sp: sp, binding: cfg.EntityID + "\x00" + cfg.ACSURL + "\x00" + idp.EntityID}, nil
}

// ParseMetadata parses IdP metadata: an EntityDescriptor, or an
// EntitiesDescriptor of which the first entity with an IDPSSODescriptor is
// taken. The errors it returns wrap [ErrConfig].
func ParseMetadata(data []byte) (*crewjam.EntityDescriptor, error) {
	if len(data) == 0 || len(data) > maxMetadata {
		return nil, fmt.Errorf("%w: IdP metadata missing or larger than %d bytes", ErrConfig, maxMetadata)
	}
	var ed crewjam.EntityDescriptor
	if err := xml.Unmarshal(data, &ed); err == nil && len(ed.IDPSSODescriptors) > 0 {
		return &ed, nil
	}
	var eds crewjam.EntitiesDescriptor
	if err := xml.Unmarshal(data, &eds); err != nil {
		return nil, fmt.Errorf("%w: IdP metadata: %v", ErrConfig, err)
	}
	for i := range eds.EntityDescriptors {
		if len(eds.EntityDescriptors[i].IDPSSODescriptors) > 0 {
			return &eds.EntityDescriptors[i], nil
		}
	}
	return nil, fmt.Errorf("%w: IdP metadata has no IDPSSODescriptor", ErrConfig)
}

// EntityID returns the service provider's entity id.
func (s *ServiceProvider) EntityID() string { return s.cfg.EntityID }

// IDPEntityID returns the configured IdP's entity id.
func (s *ServiceProvider) IDPEntityID() string { return s.sp.IDPMetadata.EntityID }

// Metadata returns the service provider's metadata XML, for the IdP.
func (s *ServiceProvider) Metadata() ([]byte, error) {
	b, err := xml.MarshalIndent(s.sp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml: metadata: %w", err)
	}
	return append([]byte(xml.Header), b...), nil
}

// ServeMetadata writes the metadata XML.
func (s *ServiceProvider) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := s.Metadata()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

// Start begins an SP-initiated login: it makes an AuthnRequest, binds its
// ID to the signed login cookie set on w, and returns the IdP URL (HTTP
// Redirect binding) to send the browser to.
func (s *ServiceProvider) Start(w http.ResponseWriter, r *http.Request) (string, error) {
	loc := s.sp.GetSSOBindingLocation(crewjam.HTTPRedirectBinding)
	if loc == "" {
		return "", fmt.Errorf("%w: IdP metadata has no HTTP-Redirect SSO endpoint", ErrConfig)
	}
	req, err := s.sp.MakeAuthenticationRequest(loc, crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding)
	if err != nil {
		return "", fmt.Errorf("saml: authn request: %w", err)
	}
	u, err := req.Redirect("", s.sp)
	if err != nil {
		return "", fmt.Errorf("saml: authn request: %w", err)
	}
	p := pending{RequestID: req.ID, Expires: s.cfg.Now().Add(s.cfg.LoginTimeout).Unix()}
	http.SetCookie(w, s.cookie(seal(s.cfg.CookieKey, s.binding, p), int(s.cfg.LoginTimeout/time.Second)))
	return u.String(), nil
}

// Finish handles a response posted to the ACS URL: it checks the signature
// (of the response or of the assertion; SHA-1 refused) against the IdP
// metadata, the issuer, the destination and recipient, the audience, the
// validity window (within the clock skew the crewjam/saml package allows,
// MaxClockSkew), that the response answers the request bound to this
// browser's login cookie (unless IdP-initiated login is allowed), and that
// the assertion was not accepted before. It clears the login cookie and
// returns the mapped [Identity]. Every refusal wraps [ErrInvalidResponse].
func (s *ServiceProvider) Finish(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	var ids []string
	if c, err := r.Cookie(s.cfg.CookieName); err == nil {
		http.SetCookie(w, s.cookie("", -1))
		if p, ok := open(s.cfg.CookieKey, s.binding, c.Value, s.cfg.Now()); ok {
			ids = []string{p.RequestID}
		}
	}
	if len(ids) == 0 && !s.cfg.AllowIDPInitiated {
		return nil, fmt.Errorf("%w: %w", ErrInvalidResponse, ErrUnsolicited)
	}
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("%w: the ACS accepts POST only", ErrInvalidResponse)
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	if r.Form.Has("SAMLart") || r.PostForm.Get("SAMLResponse") == "" {
		return nil, fmt.Errorf("%w: no SAMLResponse (the artifact binding is not accepted)", ErrInvalidResponse)
	}
	a, err := s.sp.ParseResponse(r, ids)
	if err != nil {
		return nil, classify(err)
	}
	id, err := s.cfg.Attributes.identity(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidResponse, err)
	}
	return id, nil
}

// classify maps an error of the crewjam/saml package to this package's.
func classify(err error) error {
	detail := err
	var ire *crewjam.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		detail = ire.PrivateErr
	}
	var kind error
	switch {
	case errors.Is(err, ErrReplayed), errors.Is(err, crewjam.ErrAssertionReplayed):
		kind = ErrReplayed
	case errors.Is(err, crewjam.ErrInvalidSignature), errors.Is(err, crewjam.ErrUntrustedCertificate),
		errors.Is(err, crewjam.ErrCertificateNotValidNow), errors.Is(err, crewjam.ErrUnsupported):
		kind = ErrSignature
	case errors.Is(err, crewjam.ErrExpired), errors.Is(err, crewjam.ErrNotYetValid):
		kind = ErrExpired
	case errors.Is(err, crewjam.ErrAudienceMismatch):
		kind = ErrAudience
	case errors.Is(err, crewjam.ErrDestinationMismatch):
		kind = ErrRecipient
	case errors.Is(err, crewjam.ErrIssuerMismatch):
		kind = ErrIssuer
	case errors.Is(err, crewjam.ErrRequestIDMismatch):
		kind = ErrRequestMismatch
	default:
		return fmt.Errorf("%w: %v", ErrInvalidResponse, detail)
	}
	return fmt.Errorf("%w: %w: %v", ErrInvalidResponse, kind, detail)
}

func (s *ServiceProvider) cookie(value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name: s.cfg.CookieName, Value: value, Path: s.cfg.CookiePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
	// The response comes back as a cross-site POST from the IdP: only a
	// SameSite=None cookie is sent with it, and browsers require Secure for
	// that. Over plain http (development), Lax is the best there is.
	if strings.HasPrefix(s.cfg.ACSURL, "https://") {
		c.Secure, c.SameSite = true, http.SameSiteNoneMode
	}
	return c
}

// clock adapts a Now func to the clock the XML signature package takes.
type clock struct {
	clockwork.Clock
	now func() time.Time
}

func (c clock) Now() time.Time                  { return c.now() }
func (c clock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c clock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }
