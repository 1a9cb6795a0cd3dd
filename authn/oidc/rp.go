package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"

	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultCookieName is the name of the login cookie when Config.CookieName
// is empty.
const DefaultCookieName = "saaskit_oidc"

// DefaultLoginTimeout is how long a started login stays valid when
// Config.LoginTimeout is zero.
const DefaultLoginTimeout = 10 * time.Minute

// Config configures a [RelyingParty] for one provider (one tenant's
// provider, in a multi-tenant service). The zero value of every optional
// field is the documented default.
type Config struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer + "/.well-known/openid-configuration". Required.
	Issuer string
	// ClientID and ClientSecret are the credentials registered with the
	// provider. ClientID is required; the secret may be empty for a public
	// client (PKCE still applies).
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback URL registered with the provider.
	// Required.
	RedirectURL string
	// Scopes requested besides "openid"; default: email and profile.
	Scopes []string
	// AllowedDomains, when not empty, restricts logins to emails whose
	// domain (after the last @, compared case-insensitively) is listed.
	AllowedDomains []string

	// CookieKey signs the login cookie (HMAC-SHA256). At least 32 bytes.
	// Required.
	CookieKey []byte
	// CookieName is the login cookie's name; default DefaultCookieName.
	CookieName string
	// CookiePath is the login cookie's path; default "/".
	CookiePath string
	// LoginTimeout bounds the time between Start and Finish; default
	// DefaultLoginTimeout.
	LoginTimeout time.Duration

	// HTTPClient makes the discovery, JWKS and token requests; default
	// http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Identity is the verified result of a login.
type Identity struct {
	// Issuer and Subject identify the user at the provider; the pair is
	// stable, unlike the email.
	Issuer  string
	Subject string
	// Email is the user's email, verified by the provider.
	Email         string
	EmailVerified bool
	// Name is the user's display name, when the provider sends one.
	Name string
}

// RelyingParty runs the authorization code flow with PKCE against one
// OpenID provider. It is safe for concurrent use.
type RelyingParty struct {
	cfg      Config
	provider *gooidc.Provider
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
	binding  string
}

// New checks cfg and runs discovery against cfg.Issuer. The errors it
// returns wrap [ErrConfig].
func New(ctx context.Context, cfg Config) (*RelyingParty, error) {
	switch {
	case cfg.Issuer == "":
		return nil, fmt.Errorf("%w: issuer required", ErrConfig)
	case cfg.ClientID == "":
		return nil, fmt.Errorf("%w: client id required", ErrConfig)
	case cfg.RedirectURL == "":
		return nil, fmt.Errorf("%w: redirect URL required", ErrConfig)
	case len(cfg.CookieKey) < 32:
		return nil, fmt.Errorf("%w: cookie key must have at least 32 bytes", ErrConfig)
	}
	if _, err := url.Parse(cfg.RedirectURL); err != nil {
		return nil, fmt.Errorf("%w: redirect URL: %v", ErrConfig, err)
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"email", "profile"}
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
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %v", ErrConfig, err)
	}
	scopes := []string{gooidc.ScopeOpenID}
	for _, s := range cfg.Scopes {
		if s != gooidc.ScopeOpenID && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &RelyingParty{
		cfg:      cfg,
		provider: p,
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: cfg.RedirectURL, Scopes: scopes,
		},
		verifier: p.Verifier(&gooidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		binding:  cfg.Issuer + "\x00" + cfg.ClientID + "\x00" + cfg.RedirectURL,
	}, nil
}

// Start begins a login: it sets the signed login cookie on w, carrying a
// fresh state, nonce and PKCE verifier, and returns the provider's
// authorization URL to redirect the browser to.
func (rp *RelyingParty) Start(w http.ResponseWriter, r *http.Request) (string, error) {
	st := loginState{
		State:    random(),
		Nonce:    random(),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  rp.cfg.Now().Add(rp.cfg.LoginTimeout).Unix(),
	}
	http.SetCookie(w, rp.cookie(seal(rp.cfg.CookieKey, rp.binding, st), int(rp.cfg.LoginTimeout/time.Second)))
	return rp.oauth.AuthCodeURL(st.State, gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), nil
}

// Finish completes a login at the callback: it checks the state against the
// login cookie (and clears the cookie), exchanges the code with the PKCE
// verifier, verifies the ID token (signature, issuer, audience, expiry,
// nonce), and requires a verified email in an allowed domain. Every error
// for a bad callback wraps one of the package's sentinel errors.
func (rp *RelyingParty) Finish(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	c, err := r.Cookie(rp.cfg.CookieName)
	if err != nil {
		return nil, ErrMissingState
	}
	http.SetCookie(w, rp.cookie("", -1)) // one use, whatever the outcome
	st, ok := open(rp.cfg.CookieKey, rp.binding, c.Value, rp.cfg.Now())
	if !ok {
		return nil, ErrMissingState
	}
	q := r.URL.Query()
	if !hmac.Equal([]byte(q.Get("state")), []byte(st.State)) {
		return nil, ErrStateMismatch
	}
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("%w: %s %s", ErrProviderError, clip(e), clip(q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: no code in callback", ErrExchange)
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, rp.cfg.HTTPClient)
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrExchange, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: no id_token in token response", ErrExchange)
	}
	return rp.verify(gooidc.ClientContext(r.Context(), rp.cfg.HTTPClient), raw, st.Nonce)
}

func (rp *RelyingParty) verify(ctx context.Context, raw, nonce string) (*Identity, error) {
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(nonce)) {
		return nil, ErrNonceMismatch
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrTokenInvalid, err)
	}
	// Some providers send email_verified as the string "true".
	verified := claims.EmailVerified == true || claims.EmailVerified == "true"
	if claims.Email == "" || !verified {
		return nil, ErrEmailNotVerified
	}
	if !rp.domainAllowed(claims.Email) {
		return nil, fmt.Errorf("%w: %s", ErrDomainNotAllowed, domain(claims.Email))
	}
	return &Identity{
		Issuer: idt.Issuer, Subject: idt.Subject,
		Email: claims.Email, EmailVerified: true, Name: claims.Name,
	}, nil
}

func (rp *RelyingParty) domainAllowed(email string) bool {
	if len(rp.cfg.AllowedDomains) == 0 {
		return true
	}
	d := domain(email)
	return d != "" && slices.ContainsFunc(rp.cfg.AllowedDomains, func(a string) bool {
		return strings.EqualFold(strings.TrimPrefix(a, "@"), d)
	})
}

func (rp *RelyingParty) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: rp.cfg.CookieName, Value: value, Path: rp.cfg.CookiePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(rp.cfg.RedirectURL, "https://"),
	}
}

func domain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(email[i+1:])
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// clip bounds provider-supplied text that goes into an error message.
func clip(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
