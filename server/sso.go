package server

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/oidc"
	"github.com/saaskit/saaskit/authn/saml"
	"github.com/saaskit/saaskit/tenancy"
)

// Kinds of SSO connection; a tenant has at most one of each.
const (
	ssoOIDC = "oidc"
	ssoSAML = "saml"
)

// Audit actions of single sign-on.
const (
	ActionSSOConfigured   = "sso.configured"
	ActionSSORemoved      = "sso.removed"
	ActionSSOLogin        = "auth.sso_login_succeeded"
	ActionSSOLoginFailed  = "auth.sso_login_failed"
	ActionSSOUserProvided = "auth.sso_member_provisioned"
)

// Errors of single sign-on, mapped to problems by the SSO handlers.
var (
	ErrSSODisabled     = errors.New("server: single sign-on is not configured on this server (SAASKIT_SSO_ENCRYPTION_KEY)")
	ErrSSONotSetUp     = errors.New("server: the tenant has no such SSO connection")
	ErrSSORefused      = errors.New("server: single sign-on refused")
	ErrSSONotAMember   = errors.New("server: an account with this email exists; an admin of the tenant must add it before it can sign in with SSO")
	ErrSSOMemberLocked = errors.New("server: the membership is deactivated")
)

// ssoConnection is one tenant's OIDC provider or SAML IdP. Config holds the
// settings as JSON; Secret the client secret or the SP private key, sealed
// with AES-GCM under the server's SSO key.
type ssoConnection struct {
	bun.BaseModel `bun:"table:sso_connections,alias:ssoc"`
	tenancy.Scoped

	Kind      string    `bun:"kind,pk"`
	Config    string    `bun:"config,notnull"`
	Secret    string    `bun:"secret,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// oidcSettings are the stored, non-secret settings of an OIDC connection.
type oidcSettings struct {
	Issuer         string     `json:"issuer"`
	ClientID       string     `json:"client_id"`
	Scopes         []string   `json:"scopes,omitempty"`
	AllowedDomains []string   `json:"allowed_domains,omitempty"`
	DefaultRole    authn.Role `json:"default_role"`
	ReturnURLs     []string   `json:"return_urls,omitempty"`
}

// samlSettings are the stored, non-secret settings of a SAML connection.
type samlSettings struct {
	IDPMetadata       string                `json:"idp_metadata"`
	IDPMetadataURL    string                `json:"idp_metadata_url,omitempty"` // where IDPMetadata was fetched from
	IDPEntityID       string                `json:"idp_entity_id"`
	Attributes        saml.AttributeMap     `json:"attributes"`
	RoleMap           map[string]authn.Role `json:"role_map,omitempty"`
	AllowIDPInitiated bool                  `json:"allow_idp_initiated"`
	DefaultRole       authn.Role            `json:"default_role"`
	Certificate       string                `json:"certificate"` // PEM, the SP's
	ReturnURLs        []string              `json:"return_urls,omitempty"`
}

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261220000001",
		Comment: "sso connections",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			db := m.DB()
			idType, tsType := "TEXT", "TIMESTAMP"
			if db.Dialect().Name() == dialect.PG {
				idType, tsType = "UUID", "TIMESTAMPTZ"
			}
			_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS sso_connections (
				tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
				kind TEXT NOT NULL CHECK (kind IN ('oidc', 'saml')),
				config TEXT NOT NULL,
				secret TEXT NOT NULL DEFAULT '',
				created_at %[2]s NOT NULL,
				updated_at %[2]s NOT NULL,
				PRIMARY KEY (tenant_id, kind))`, idType, tsType))
			if err != nil {
				return fmt.Errorf("server: migrate sso: %w", err)
			}
			return tenancy.EnableRLS(ctx, db, "sso_connections")
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS sso_connections")
			return err
		},
	})
}

// ssoKeys seals secrets with AES-256-GCM. The first key seals; every key
// opens, so that a key can be rotated: put the new key first, keep the old
// one after it until every connection has been saved again.
type ssoKeys struct {
	aeads  []cipher.AEAD
	ids    []string // key ids: the first 8 hex digits of SHA-256 of the key
	cookie []byte   // HMAC key of the login cookies, derived from the first key
}

// parseSSOKeys reads a comma-separated list of base64 (std or URL) 32-byte
// keys. Empty means SSO is off.
func parseSSOKeys(list string) (*ssoKeys, error) {
	k := &ssoKeys{}
	for _, s := range splitList(list) {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%w: SAASKIT_SSO_ENCRYPTION_KEY: each key is 32 bytes in base64", ErrConfig)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		sum := sha256.Sum256(raw)
		k.aeads = append(k.aeads, aead)
		k.ids = append(k.ids, fmt.Sprintf("%x", sum[:4]))
		if k.cookie == nil {
			m := hmac.New(sha256.New, raw)
			m.Write([]byte("saaskit sso login cookie"))
			k.cookie = m.Sum(nil)
		}
	}
	if len(k.aeads) == 0 {
		return nil, nil
	}
	return k, nil
}

// seal encrypts plain for one tenant and kind (bound as additional data, so
// that a sealed secret cannot be moved to another row). The result is
// "keyid.base64(nonce||ciphertext)".
func (k *ssoKeys) seal(tenant uuid.UUID, kind string, plain []byte) string {
	nonce := make([]byte, k.aeads[0].NonceSize())
	rand.Read(nonce)
	ct := k.aeads[0].Seal(nonce, nonce, plain, []byte(tenant.String()+"/"+kind))
	return k.ids[0] + "." + base64.RawStdEncoding.EncodeToString(ct)
}

func (k *ssoKeys) open(tenant uuid.UUID, kind, sealed string) ([]byte, error) {
	id, b64, ok := strings.Cut(sealed, ".")
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if !ok || err != nil {
		return nil, errors.New("server: sso secret malformed")
	}
	for i, a := range k.aeads {
		if k.ids[i] != id || len(ct) < a.NonceSize() {
			continue
		}
		plain, err := a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], []byte(tenant.String()+"/"+kind))
		if err == nil {
			return plain, nil
		}
	}
	return nil, fmt.Errorf("server: sso secret sealed with key %s, which is not configured", id)
}

// maxCachedSSO bounds each cache of built connections: without
// SAASKIT_SSO_PUBLIC_URL the base URL comes from the Host header, which the
// client chooses.
const maxCachedSSO = 1000

// version identifies the stored state of a connection.
func (c *ssoConnection) version() string {
	return c.UpdatedAt.String() + "\x00" + c.Config + "\x00" + c.Secret
}

// ssoService builds and caches each tenant's relying party and service
// provider from its stored connection.
type ssoService struct {
	keys   *ssoKeys
	replay saml.ReplayCache
	http   *http.Client

	mu   sync.Mutex
	oidc map[string]cachedRP // key: tenant/base URL
	saml map[string]cachedSP
}

type cachedRP struct {
	version string
	rp      *oidc.RelyingParty
	cfg     oidcSettings
}

type cachedSP struct {
	version string
	sp      *saml.ServiceProvider
	cfg     samlSettings
}

func (s *Server) setupSSO(mux *http.ServeMux) error {
	keys, err := parseSSOKeys(s.cfg.SSOEncryptionKey)
	if err != nil {
		return err
	}
	s.sso = &ssoService{
		keys:   keys,
		replay: dbReplayCache{s: s},
		http:   &http.Client{Timeout: 10 * time.Second},
		oidc:   map[string]cachedRP{},
		saml:   map[string]cachedSP{},
	}
	// The login routes count in the auth rate-limit scope, per client IP.
	limit := func(h http.HandlerFunc) http.Handler {
		if s.rl != nil && s.rl.auth != nil {
			return s.rl.auth(h)
		}
		return h
	}
	mux.Handle("GET /api/auth/sso/{tenant}/oidc/login/{$}", limit(s.ssoOIDCLogin))
	mux.Handle("GET /api/auth/sso/{tenant}/oidc/callback/{$}", limit(s.ssoOIDCCallback))
	mux.HandleFunc("GET /api/auth/sso/{tenant}/saml/metadata/{$}", s.ssoSAMLMetadata)
	mux.Handle("GET /api/auth/sso/{tenant}/saml/login/{$}", limit(s.ssoSAMLLogin))
	mux.Handle("POST /api/auth/sso/{tenant}/saml/acs/{$}", limit(s.ssoSAMLACS))
	return nil
}

// loadConnection reads a tenant's connection of one kind.
func (s *Server) loadConnection(ctx context.Context, t *tenancy.Tenant, kind string) (*ssoConnection, error) {
	c := new(ssoConnection)
	err := s.tx.Read(tenancy.WithTenant(ctx, t), func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(c).Where("?TableAlias.kind = ?", kind).Scan(ctx)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrSSONotSetUp
	}
	return c, err
}

// relyingParty returns the tenant's OIDC relying party for the public base
// URL, building it (with discovery) when the connection changed.
func (s *Server) relyingParty(ctx context.Context, t *tenancy.Tenant, base string) (*oidc.RelyingParty, oidcSettings, error) {
	if s.sso.keys == nil {
		return nil, oidcSettings{}, ErrSSODisabled
	}
	c, err := s.loadConnection(ctx, t, ssoOIDC)
	if err != nil {
		return nil, oidcSettings{}, err
	}
	key := t.ID.String() + " " + base
	s.sso.mu.Lock()
	hit, ok := s.sso.oidc[key]
	s.sso.mu.Unlock()
	if ok && hit.version == c.version() {
		return hit.rp, hit.cfg, nil
	}
	var cfg oidcSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, cfg, err
	}
	secret, err := s.sso.keys.open(t.ID, ssoOIDC, c.Secret)
	if err != nil {
		return nil, cfg, err
	}
	prefix := "/api/auth/sso/" + t.ID.String() + "/oidc/"
	rp, err := oidc.New(ctx, oidc.Config{
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: string(secret),
		RedirectURL: base + prefix + "callback/", Scopes: cfg.Scopes, AllowedDomains: cfg.AllowedDomains,
		CookieKey: s.sso.keys.cookie, CookieName: "saaskit_oidc_" + t.ID.String(), CookiePath: prefix,
		HTTPClient: s.sso.http, Now: s.now,
	})
	if err != nil {
		return nil, cfg, err
	}
	s.sso.mu.Lock()
	if len(s.sso.oidc) >= maxCachedSSO {
		clear(s.sso.oidc)
	}
	s.sso.oidc[key] = cachedRP{version: c.version(), rp: rp, cfg: cfg}
	s.sso.mu.Unlock()
	return rp, cfg, nil
}

// serviceProvider returns the tenant's SAML service provider for the public
// base URL.
func (s *Server) serviceProvider(ctx context.Context, t *tenancy.Tenant, base string) (*saml.ServiceProvider, samlSettings, error) {
	if s.sso.keys == nil {
		return nil, samlSettings{}, ErrSSODisabled
	}
	c, err := s.loadConnection(ctx, t, ssoSAML)
	if err != nil {
		return nil, samlSettings{}, err
	}
	key := t.ID.String() + " " + base
	s.sso.mu.Lock()
	hit, ok := s.sso.saml[key]
	s.sso.mu.Unlock()
	if ok && hit.version == c.version() {
		return hit.sp, hit.cfg, nil
	}
	var cfg samlSettings
	if err := json.Unmarshal([]byte(c.Config), &cfg); err != nil {
		return nil, cfg, err
	}
	der, err := s.sso.keys.open(t.ID, ssoSAML, c.Secret)
	if err != nil {
		return nil, cfg, err
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, cfg, err
	}
	signer, ok := pk.(crypto.Signer)
	if !ok {
		return nil, cfg, errors.New("server: sso: stored SP key is not a signing key")
	}
	block, _ := pem.Decode([]byte(cfg.Certificate))
	if block == nil {
		return nil, cfg, errors.New("server: sso: stored SP certificate malformed")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, cfg, err
	}
	prefix := "/api/auth/sso/" + t.ID.String() + "/saml/"
	sp, err := saml.New(saml.Config{
		MetadataURL: base + prefix + "metadata/", ACSURL: base + prefix + "acs/",
		Key: signer, Certificate: cert, IDPMetadata: []byte(cfg.IDPMetadata),
		Attributes: cfg.Attributes, AllowIDPInitiated: cfg.AllowIDPInitiated, ReplayCache: s.sso.replay,
		CookieKey: s.sso.keys.cookie, CookieName: "saaskit_saml_" + t.ID.String(), CookiePath: prefix,
		Now: s.now,
	})
	if err != nil {
		return nil, cfg, err
	}
	s.sso.mu.Lock()
	if len(s.sso.saml) >= maxCachedSSO {
		clear(s.sso.saml)
	}
	s.sso.saml[key] = cachedSP{version: c.version(), sp: sp, cfg: cfg}
	s.sso.mu.Unlock()
	return sp, cfg, nil
}

// maxIDPMetadata bounds a fetched IdP metadata document.
const maxIDPMetadata = 1 << 20

// checkIDPMetadata parses IdP metadata and requires a signing certificate.
// Its errors are fit to show the tenant's admin.
func checkIDPMetadata(raw []byte) (*crewjam.EntityDescriptor, error) {
	ed, err := saml.ParseMetadata(raw)
	if err != nil {
		return nil, errors.New("not IdP metadata: " + publicMessage(err))
	}
	if _, err := saml.SigningCertificates(ed); err != nil {
		return nil, errors.New(publicMessage(err))
	}
	return ed, nil
}

// fetchIDPMetadata downloads IdP metadata (http or https, at most
// maxIDPMetadata bytes, within the SSO client's timeout) and checks it.
// Its errors are fit to show the tenant's admin.
func (s *Server) fetchIDPMetadata(ctx context.Context, rawURL string) ([]byte, *crewjam.EntityDescriptor, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nil, errors.New("must be an absolute https or http URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, errors.New("must be an absolute https or http URL")
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := s.sso.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the metadata failed: %s", ssoFetchError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetching the metadata failed: HTTP status %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxIDPMetadata+1))
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the metadata failed: %s", ssoFetchError(err))
	}
	if len(raw) > maxIDPMetadata {
		return nil, nil, fmt.Errorf("the metadata is larger than %d bytes", maxIDPMetadata)
	}
	ed, err := checkIDPMetadata(raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, ed, nil
}

// ssoFetchError describes a failed request without the wrapping of
// url.Error, which repeats the URL.
func ssoFetchError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// replaySkew is added to an assertion's expiry in the replay cache: the
// service provider accepts an assertion up to its clock skew bound (crewjam's
// MaxClockSkew, 3 minutes) after NotOnOrAfter, so it must be remembered that
// long too.
const replaySkew = 3 * time.Minute

// dbReplayCache is the [saml.ReplayCache] of the server: a table of the IDs
// of accepted assertions (SHA-256, hex) until their expiry, shared by every
// replica on the database, so that a response replayed to another replica
// is refused as well. Expired rows are dropped as new ones arrive.
type dbReplayCache struct {
	s   *Server
	now func() time.Time // nil: the server's clock
}

var _ saml.ReplayCache = dbReplayCache{}

// Consume implements [saml.ReplayCache].
func (c dbReplayCache) Consume(id string, expiresAt time.Time) error {
	ctx, cancel := context.WithTimeout(tenancy.System(context.Background()), 10*time.Second)
	defer cancel()
	sum := sha256.Sum256([]byte(id))
	key := hex.EncodeToString(sum[:])
	clock := c.now
	if clock == nil {
		clock = c.s.now
	}
	now := clock().UTC()
	until := expiresAt.UTC().Add(replaySkew)
	if until.Before(now) {
		until = now.Add(replaySkew)
	}
	return c.s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM saml_assertions WHERE expires_at <= ?", now); err != nil {
			return err
		}
		// An expired row of the same id (only possible when the delete above
		// raced another) is taken over; a live one is a replay.
		res, err := tx.ExecContext(ctx, `INSERT INTO saml_assertions (id_hash, expires_at) VALUES (?, ?)
			ON CONFLICT (id_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE saml_assertions.expires_at <= ?`,
			key, until, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("%w: assertion already accepted", saml.ErrReplayed)
		}
		return nil
	})
}

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261220000003",
		Comment: "saml assertion replay cache",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			tsType := "TIMESTAMP"
			if m.DB().Dialect().Name() == dialect.PG {
				tsType = "TIMESTAMPTZ"
			}
			if _, err := m.DB().ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS saml_assertions (
				id_hash TEXT PRIMARY KEY,
				expires_at %s NOT NULL)`, tsType)); err != nil {
				return fmt.Errorf("server: migrate saml replay cache: %w", err)
			}
			_, err := m.DB().ExecContext(ctx, "CREATE INDEX IF NOT EXISTS saml_assertions_expires_at ON saml_assertions (expires_at)")
			return err
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS saml_assertions")
			return err
		},
	})
}
