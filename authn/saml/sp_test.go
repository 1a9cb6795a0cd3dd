package saml_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/authn/saml/samltest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// spKey is one key pair for every service provider of the tests: RSA key
// generation is slow, and the tests are about the IdP's keys.
var spKey = sync.OnceValues(func() (*rsa.PrivateKey, *x509.Certificate) {
	k, c, err := saml.GenerateCertificate("test SP", time.Now(), 0)
	if err != nil {
		panic(err)
	}
	return k, c
})

type result struct {
	id  *saml.Identity
	err error
}

// app is a service provider served over HTTP, as a tenant of a host
// service would have one.
type app struct {
	srv    *httptest.Server
	sp     atomic.Pointer[saml.ServiceProvider]
	result chan result
}

func newApp(t *testing.T, idp *samltest.IdP, edit func(*saml.Config)) *app {
	t.Helper()
	a := &app{result: make(chan result, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /saml/login", func(w http.ResponseWriter, r *http.Request) {
		u, err := a.sp.Load().Start(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("GET /saml/metadata", func(w http.ResponseWriter, r *http.Request) { a.sp.Load().ServeMetadata(w, r) })
	mux.HandleFunc("POST /saml/acs", func(w http.ResponseWriter, r *http.Request) {
		id, err := a.sp.Load().Finish(w, r)
		a.result <- result{id, err}
		w.WriteHeader(http.StatusNoContent)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	key, cert := spKey()
	cfg := saml.Config{
		MetadataURL: a.srv.URL + "/saml/metadata", ACSURL: a.srv.URL + "/saml/acs",
		Key: key, Certificate: cert, IDPMetadata: idp.Metadata(), CookieKey: testKey,
	}
	if edit != nil {
		edit(&cfg)
	}
	sp, err := saml.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.sp.Store(sp)
	md, err := sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Register(md); err != nil {
		t.Fatal(err)
	}
	return a
}

func newIdP(t *testing.T, edit func(*samltest.Config)) *samltest.IdP {
	t.Helper()
	cfg := samltest.Config{User: samltest.User{
		NameID: "ada", Email: "ada@example.com", Name: "Ada Lovelace", Role: "admin", Groups: []string{"staff", "eng"},
	}}
	if edit != nil {
		edit(&cfg)
	}
	idp, err := samltest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	return idp
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// form starts a login at a with c and returns the IdP's response form,
// not yet posted.
func (a *app) form(t *testing.T, c *http.Client) (string, url.Values) {
	t.Helper()
	resp, err := c.Get(a.srv.URL + "/saml/login")
	if err != nil {
		t.Fatal(err)
	}
	return readForm(t, resp)
}

func readForm(t *testing.T, resp *http.Response) (string, url.Values) {
	t.Helper()
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	action, fields, err := samltest.ParseForm(page)
	if err != nil {
		t.Fatalf("%v: status %d: %.300s", err, resp.StatusCode, page)
	}
	return action, fields
}

// post posts a response form with c and returns what the ACS got.
func (a *app) post(t *testing.T, c *http.Client, action string, fields url.Values) result {
	t.Helper()
	resp, err := samltest.Post(c, action, fields)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("ACS answered %d", resp.StatusCode)
	}
	return <-a.result
}

func (a *app) login(t *testing.T, c *http.Client) result {
	t.Helper()
	action, fields := a.form(t, c)
	return a.post(t, c, action, fields)
}

func refused(t *testing.T, res result, want ...error) {
	t.Helper()
	if res.id != nil {
		t.Fatalf("identity %+v accepted, want refusal", res.id)
	}
	if !errors.Is(res.err, saml.ErrInvalidResponse) {
		t.Fatalf("err = %v, want ErrInvalidResponse", res.err)
	}
	for _, w := range want {
		if errors.Is(res.err, w) {
			return
		}
	}
	t.Fatalf("err = %v, want one of %v", res.err, want)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, nil)
	res := a.login(t, browser(t))
	if res.err != nil {
		t.Fatal(res.err)
	}
	id := res.id
	if id.Email != "ada@example.com" || id.Name != "Ada Lovelace" || id.Role != "admin" || id.NameID != "ada" {
		t.Fatalf("identity = %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"staff", "eng"}) {
		t.Fatalf("groups = %v", id.Groups)
	}
	if id.Issuer != idp.Provider.Metadata().EntityID || id.SessionIndex == "" {
		t.Fatalf("issuer %q, session index %q", id.Issuer, id.SessionIndex)
	}
}

func TestAttributeMap(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, func(c *saml.Config) {
		c.Attributes = saml.AttributeMap{Name: []string{"mail"}, Role: []string{"eduPersonAffiliation"}}
	})
	res := a.login(t, browser(t))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.id.Name != "ada@example.com" || res.id.Role != "staff" {
		t.Fatalf("mapped identity = %+v", res.id)
	}
}

func TestExpiredAndNotYetValid(t *testing.T) {
	t.Parallel()
	for name, shift := range map[string]time.Duration{"expired": time.Hour, "not yet valid": -time.Hour} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The SP's clock moves between the request and the response.
			var offset atomic.Int64
			idp := newIdP(t, nil)
			a := newApp(t, idp, func(c *saml.Config) {
				c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
				c.LoginTimeout = 3 * time.Hour
			})
			c := browser(t)
			action, fields := a.form(t, c)
			offset.Store(int64(shift))
			refused(t, a.post(t, c, action, fields), saml.ErrExpired)
		})
	}
}

// TestClockSkew: an IdP a minute ahead is within the allowed skew.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, func(c *samltest.Config) { c.Now = func() time.Time { return time.Now().Add(time.Minute) } })
	a := newApp(t, idp, nil)
	if res := a.login(t, browser(t)); res.err != nil {
		t.Fatal(res.err)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)

	t.Run("same browser", func(t *testing.T) {
		a := newApp(t, idp, nil)
		c := browser(t)
		action, fields := a.form(t, c)
		if res := a.post(t, c, action, fields); res.err != nil {
			t.Fatal(res.err)
		}
		refused(t, a.post(t, c, action, fields), saml.ErrUnsolicited)
		// Even with a new login pending, the old response is refused.
		c.Get(a.srv.URL + "/saml/login") // sets a new cookie; the IdP's form is dropped
		refused(t, a.post(t, c, action, fields), saml.ErrRequestMismatch, saml.ErrReplayed)
	})

	t.Run("idp initiated", func(t *testing.T) {
		a := newApp(t, idp, func(c *saml.Config) { c.AllowIDPInitiated = true })
		c := browser(t)
		sp, _ := url.Parse(a.srv.URL + "/saml/metadata")
		resp, err := c.Get(idp.URL + "/initiate?sp=" + url.QueryEscape(sp.String()))
		if err != nil {
			t.Fatal(err)
		}
		action, fields := readForm(t, resp)
		if res := a.post(t, c, action, fields); res.err != nil {
			t.Fatal(res.err)
		}
		refused(t, a.post(t, browser(t), action, fields), saml.ErrReplayed)
	})
}

func TestIDPInitiatedOffByDefault(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, nil)
	c := browser(t)
	resp, err := c.Get(idp.URL + "/initiate?sp=" + url.QueryEscape(a.srv.URL+"/saml/metadata"))
	if err != nil {
		t.Fatal(err)
	}
	action, fields := readForm(t, resp)
	refused(t, a.post(t, c, action, fields), saml.ErrUnsolicited)

	// With a login of this browser pending, an unsolicited response is
	// still refused: it answers no request.
	c.Get(a.srv.URL + "/saml/login")
	refused(t, a.post(t, c, action, fields), saml.ErrRequestMismatch)
}

func TestTamperedSignature(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, nil)
	c := browser(t)
	action, fields := a.form(t, c)
	xmlDoc, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	// The IdP signs the response and encrypts the assertion in it: change
	// one character of the encrypted assertion, then the signed IssueInstant.
	doc := string(xmlDoc)
	i := strings.LastIndex(doc, "</xenc:CipherValue>") - 5
	flip := "A"
	if doc[i] == 'A' {
		flip = "B"
	}
	forged := doc[:i] + flip + doc[i+1:]
	fields.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(forged)))
	refused(t, a.post(t, c, action, fields), saml.ErrSignature)

	c = browser(t)
	action, fields = a.form(t, c)
	xmlDoc, _ = base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	forged = regexp.MustCompile(`IssueInstant="[^"]*"`).ReplaceAllString(string(xmlDoc), `IssueInstant="`+time.Now().UTC().Format("2006-01-02T15:04:05Z")+`"`)
	if forged == string(xmlDoc) {
		t.Fatal("no IssueInstant changed")
	}
	fields.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(forged)))
	refused(t, a.post(t, c, action, fields), saml.ErrSignature)
}

func TestSHA1Refused(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, func(c *samltest.Config) { c.SignatureMethod = dsig.RSASHA1SignatureMethod })
	a := newApp(t, idp, nil)
	refused(t, a.login(t, browser(t)), saml.ErrSignature)
}

func TestAudience(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, func(c *saml.Config) { c.AllowIDPInitiated = true })
	// Another SP registered at the IdP with the same ACS URL: the IdP
	// addresses the assertion to it.
	md, _ := a.sp.Load().Metadata()
	other := strings.ReplaceAll(string(md), `entityID="`+a.srv.URL+`/saml/metadata"`, `entityID="urn:other-sp"`)
	if err := idp.Register([]byte(other)); err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	resp, err := c.Get(idp.URL + "/initiate?sp=urn:other-sp")
	if err != nil {
		t.Fatal(err)
	}
	action, fields := readForm(t, resp)
	refused(t, a.post(t, c, action, fields), saml.ErrAudience)
}

// TestOtherTenantIdP: tenant A's IdP cannot log anyone in at tenant B, even
// when it answers B's own request, addressed to B, in B's browser.
func TestOtherTenantIdP(t *testing.T) {
	t.Parallel()
	idpA, idpB := newIdP(t, nil), newIdP(t, nil)
	a := newApp(t, idpA, nil)
	b := newApp(t, idpB, func(c *saml.Config) { c.AllowIDPInitiated = true })
	if err := idpA.Register(mustMetadata(t, b)); err != nil { // A's IdP knows B's SP too
		t.Fatal(err)
	}

	t.Run("A's response at B's ACS", func(t *testing.T) {
		c := browser(t)
		_, fields := a.form(t, c)
		c.Get(b.srv.URL + "/saml/login") // B's login cookie is set
		refused(t, b.post(t, c, b.srv.URL+"/saml/acs", fields), saml.ErrRequestMismatch, saml.ErrRecipient, saml.ErrSignature, saml.ErrIssuer)
	})

	t.Run("A's IdP addresses B", func(t *testing.T) {
		// B accepts IdP-initiated logins, so that only the signature
		// stands between A's IdP and B.
		c := browser(t)
		resp, err := c.Get(idpA.URL + "/initiate?sp=" + url.QueryEscape(b.srv.URL+"/saml/metadata"))
		if err != nil {
			t.Fatal(err)
		}
		action, fields := readForm(t, resp)
		if action != b.srv.URL+"/saml/acs" {
			t.Fatalf("A's IdP posts to %s", action)
		}
		refused(t, b.post(t, c, action, fields), saml.ErrSignature, saml.ErrIssuer)
	})
}

func TestNoEmail(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, func(c *samltest.Config) { c.User.Email = "" })
	a := newApp(t, idp, nil)
	refused(t, a.login(t, browser(t)), saml.ErrNoEmail)
}

func TestFinishRefusesJunk(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	a := newApp(t, idp, func(c *saml.Config) { c.AllowIDPInitiated = true })
	c := browser(t)
	for _, f := range []url.Values{
		{},
		{"SAMLResponse": {"%%%"}},
		{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<Response/>"))}},
		{"SAMLart": {"AAQAAA"}, "SAMLResponse": {"x"}},
	} {
		refused(t, a.post(t, c, a.srv.URL+"/saml/acs", f), saml.ErrInvalidResponse)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, nil)
	key, cert := spKey()
	good := saml.Config{
		MetadataURL: "https://sp.example/md", ACSURL: "https://sp.example/acs",
		Key: key, Certificate: cert, IDPMetadata: idp.Metadata(), CookieKey: testKey,
	}
	if _, err := saml.New(good); err != nil {
		t.Fatal(err)
	}
	for i, edit := range []func(*saml.Config){
		func(c *saml.Config) { c.ACSURL = "" },
		func(c *saml.Config) { c.ACSURL = "/acs" },
		func(c *saml.Config) { c.Key = nil },
		func(c *saml.Config) { c.CookieKey = nil },
		func(c *saml.Config) { c.IDPMetadata = nil },
		func(c *saml.Config) { c.IDPMetadata = []byte("<EntityDescriptor/>") },
	} {
		cfg := good
		edit(&cfg)
		if _, err := saml.New(cfg); !errors.Is(err, saml.ErrConfig) {
			t.Errorf("case %d: err = %v, want ErrConfig", i, err)
		}
	}
}

func mustMetadata(t *testing.T, a *app) []byte {
	t.Helper()
	md, err := a.sp.Load().Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md
}
