package samltest

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/saaskit/saaskit/authn/saml"
)

// User is who the IdP logs in.
type User struct {
	NameID string
	Email  string
	Name   string
	Role   string // sent as the attribute "role" when not empty
	Groups []string
}

// Config configures an [IdP].
type Config struct {
	// User is logged in by every request.
	User User
	// SignatureMethod signs the assertions; default RSA-SHA256.
	SignatureMethod string
	// Now is the IdP's clock; default time.Now. The IdP refuses requests
	// beyond crewjam/saml's MaxClockSkew of its clock, so move a service
	// provider's clock instead to see expired assertions.
	Now func() time.Time
}

// IdP is a running identity provider.
type IdP struct {
	// URL is the base URL of the IdP's server.
	URL string
	// Provider is the crewjam/saml identity provider, to adjust further.
	Provider *crewjam.IdentityProvider

	srv *httptest.Server
	mu  sync.Mutex
	sps map[string]*crewjam.EntityDescriptor
}

// New starts an IdP with a new key and self-signed certificate; Close stops
// it. It serves /metadata, /sso and /initiate?sp=ENTITYID (IdP-initiated
// login).
func New(cfg Config) (*IdP, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// Valid from a day back, so that a service provider whose clock is
	// behind still trusts it.
	key, cert, err := saml.GenerateCertificate("samltest IdP", now().Add(-24*time.Hour), 0)
	if err != nil {
		return nil, err
	}
	if cfg.SignatureMethod == "" {
		cfg.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	i := &IdP{sps: map[string]*crewjam.EntityDescriptor{}}
	mux := http.NewServeMux()
	i.srv = httptest.NewServer(mux)
	i.URL = i.srv.URL
	base, _ := url.Parse(i.URL)
	i.Provider = &crewjam.IdentityProvider{
		Key:                     key,
		Signer:                  key,
		Certificate:             cert,
		MetadataURL:             *base.JoinPath("metadata"),
		SSOURL:                  *base.JoinPath("sso"),
		ServiceProviderProvider: spProvider{i},
		SessionProvider:         session{cfg.User, now},
		SignatureMethod:         cfg.SignatureMethod,
		Clock:                   dsig.NewFakeClock(clock{Clock: clockwork.NewRealClock(), now: now}),
		OnError: func(w http.ResponseWriter, _ *http.Request, status int, err error) {
			http.Error(w, err.Error(), status)
		},
	}
	mux.HandleFunc("/metadata", i.Provider.ServeMetadata)
	mux.HandleFunc("/sso", i.Provider.ServeSSO)
	mux.HandleFunc("/initiate", func(w http.ResponseWriter, r *http.Request) {
		i.Provider.ServeIDPInitiated(w, r, r.URL.Query().Get("sp"), "")
	})
	return i, nil
}

// Close stops the IdP's server.
func (i *IdP) Close() { i.srv.Close() }

// Metadata returns the IdP's metadata XML.
func (i *IdP) Metadata() []byte {
	b, err := xml.Marshal(i.Provider.Metadata())
	if err != nil {
		panic(err) // the IdP's own metadata always marshals
	}
	return b
}

// Register makes a service provider known to the IdP, from its metadata.
func (i *IdP) Register(spMetadata []byte) error {
	var ed crewjam.EntityDescriptor
	if err := xml.Unmarshal(spMetadata, &ed); err != nil {
		return fmt.Errorf("samltest: SP metadata: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.sps[ed.EntityID] = &ed
	return nil
}

type spProvider struct{ i *IdP }

func (p spProvider) GetServiceProvider(_ *http.Request, id string) (*crewjam.EntityDescriptor, error) {
	p.i.mu.Lock()
	defer p.i.mu.Unlock()
	if ed, ok := p.i.sps[id]; ok {
		return ed, nil
	}
	return nil, os.ErrNotExist
}

type session struct {
	u   User
	now func() time.Time
}

func (s session) GetSession(w http.ResponseWriter, r *http.Request, req *crewjam.IdpAuthnRequest) *crewjam.Session {
	now := s.now()
	sess := &crewjam.Session{
		ID: rand.Text(), CreateTime: now, ExpireTime: now.Add(time.Hour), Index: rand.Text(),
		NameID: s.u.NameID, UserEmail: s.u.Email, UserCommonName: s.u.Name, Groups: s.u.Groups,
	}
	if s.u.Role != "" {
		sess.CustomAttributes = append(sess.CustomAttributes, crewjam.Attribute{
			Name: "role", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
			Values: []crewjam.AttributeValue{{Type: "xs:string", Value: s.u.Role}},
		})
	}
	return sess
}

type clock struct {
	clockwork.Clock
	now func() time.Time
}

func (c clock) Now() time.Time                  { return c.now() }
func (c clock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c clock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }

var (
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// ErrNoForm means a page holds no SAML form to submit.
var ErrNoForm = errors.New("samltest: no SAML form in the page")

// ParseForm reads the auto-posting form an IdP answers with: its action
// URL and its hidden fields (SAMLResponse, RelayState).
func ParseForm(page []byte) (action string, fields url.Values, err error) {
	m := formAction.FindSubmatch(page)
	if m == nil {
		return "", nil, ErrNoForm
	}
	fields = url.Values{}
	for _, in := range formInput.FindAllSubmatch(page, -1) {
		fields.Set(html.UnescapeString(string(in[1])), html.UnescapeString(string(in[2])))
	}
	if fields.Get("SAMLResponse") == "" {
		return "", nil, ErrNoForm
	}
	return html.UnescapeString(string(m[1])), fields, nil
}

// Submit reads resp (a page with the IdP's form, which it closes) and posts
// the form with c, as a browser runs the page's script.
func Submit(c *http.Client, resp *http.Response) (*http.Response, error) {
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	action, fields, err := ParseForm(page)
	if err != nil {
		return nil, fmt.Errorf("%w (status %d: %.200s)", err, resp.StatusCode, bytes.TrimSpace(page))
	}
	return Post(c, action, fields)
}

// Post posts fields to action as a form, as a browser submits one.
func Post(c *http.Client, action string, fields url.Values) (*http.Response, error) {
	return c.Post(action, "application/x-www-form-urlencoded", strings.NewReader(fields.Encode()))
}
