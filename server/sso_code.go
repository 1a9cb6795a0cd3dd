package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/tenancy"
)

// ssoCodeTTL is how long the one-time code of a browser login may wait to
// be exchanged for tokens.
const ssoCodeTTL = time.Minute

// ErrSSOCode is the one answer to a code that is unknown, used or expired.
var ErrSSOCode = errors.New("server: invalid or expired sso code")

// ssoCode is a one-time code that a browser login hands to the client
// application, which exchanges it for a token pair. Only its SHA-256 is
// stored.
type ssoCode struct {
	bun.BaseModel `bun:"table:sso_codes"`

	CodeHash  string     `bun:"code_hash,pk"`
	UserID    uuid.UUID  `bun:"user_id,type:uuid,notnull"`
	TenantID  uuid.UUID  `bun:"tenant_id,type:uuid,notnull"`
	ExpiresAt time.Time  `bun:"expires_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
}

func init() {
	authOperations["sso-exchange"] = true
	Migrations.Add(migrate.Migration{
		Name:    "20261220000002",
		Comment: "sso one-time codes",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			idType, tsType := "TEXT", "TIMESTAMP"
			if m.DB().Dialect().Name() == dialect.PG {
				idType, tsType = "UUID", "TIMESTAMPTZ"
			}
			_, err := m.DB().ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS sso_codes (
				code_hash TEXT PRIMARY KEY,
				user_id %[1]s NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
				expires_at %[2]s NOT NULL,
				used_at %[2]s)`, idType, tsType))
			return err
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS sso_codes")
			return err
		},
	})
}

func hashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// newSSOCode stores a code for the user's login to the tenant, in tx, and
// returns it. Expired codes are dropped on the way.
func (s *Server) newSSOCode(ctx context.Context, tx bun.IDB, userID, tenantID uuid.UUID) (string, error) {
	now := s.now()
	if _, err := tx.NewDelete().Model((*ssoCode)(nil)).Where("expires_at < ?", now.Add(-time.Hour)).Exec(ctx); err != nil {
		return "", err
	}
	code := rand.Text() + rand.Text()
	_, err := tx.NewInsert().Model(&ssoCode{CodeHash: hashCode(code), UserID: userID, TenantID: tenantID, ExpiresAt: now.Add(ssoCodeTTL)}).Exec(ctx)
	return code, err
}

// Return URLs: a login started with ?return_to= that the connection allows
// ends with a redirect there carrying ?code=, instead of a JSON answer. The
// URL travels in a cookie signed like the login cookies.

func returnCookieName(t *tenancy.Tenant) string { return "saaskit_sso_return_" + t.ID.String() }

func (s *Server) returnMAC(t *tenancy.Tenant, payload string) string {
	m := hmac.New(sha256.New, s.sso.keys.cookie)
	m.Write([]byte("saaskit sso return\x00" + t.ID.String() + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// setReturn checks return_to against the allowed URLs and binds it to the
// browser. An empty return_to clears any earlier one.
func (s *Server) setReturn(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant, kind string, allowed []string) error {
	rt := r.URL.Query().Get("return_to")
	c := &http.Cookie{Name: returnCookieName(t), Path: "/api/auth/sso/" + t.ID.String() + "/" + kind + "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if strings.HasPrefix(s.ssoBase(r), "https://") {
		c.Secure, c.SameSite = true, http.SameSiteNoneMode // the SAML response is a cross-site POST
	}
	if rt == "" {
		c.MaxAge = -1
		http.SetCookie(w, c)
		return nil
	}
	if !slices.Contains(allowed, rt) {
		return fmt.Errorf("%w: return_to is not one of the connection's return URLs", ErrInvalidInput)
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(rt)) + "." + strconv.FormatInt(s.now().Add(10*time.Minute).Unix(), 10)
	c.Value, c.MaxAge = payload+"."+s.returnMAC(t, payload), 600
	http.SetCookie(w, c)
	return nil
}

// returnTo reads the bound return URL, if it is valid and still allowed.
func (s *Server) returnTo(r *http.Request, t *tenancy.Tenant, allowed []string) string {
	c, err := r.Cookie(returnCookieName(t))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !hmac.Equal([]byte(c.Value[i+1:]), []byte(s.returnMAC(t, c.Value[:i]))) {
		return ""
	}
	enc, exp, ok := strings.Cut(c.Value[:i], ".")
	until, err := strconv.ParseInt(exp, 10, 64)
	raw, err2 := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil || err2 != nil || s.now().Unix() > until || !slices.Contains(allowed, string(raw)) {
		return ""
	}
	return string(raw)
}

// checkReturnURLs validates the return URLs of a connection.
func checkReturnURLs(location string, urls []string) error {
	for i, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.Fragment != "" {
			return invalid(fmt.Sprintf("%s[%d]", location, i), "an absolute http(s) URL without fragment", u)
		}
	}
	return nil
}

type ssoExchangeInput struct {
	Body struct {
		Code string `json:"code" minLength:"1" maxLength:"200"`
	}
}

func (s *Server) registerSSOExchange(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "sso-exchange", Method: http.MethodPost, Path: "/api/auth/sso-exchange/", Tags: []string{"sso"},
		Summary: "Exchange the one-time code of a browser SSO login for a token pair",
		Errors:  []int{http.StatusUnauthorized},
	}, s.handleSSOExchange)
}

func (s *Server) handleSSOExchange(ctx context.Context, in *ssoExchangeInput) (*tokenOutput, error) {
	var user User
	var m Member
	var refresh string
	err := s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.now()
		var c ssoCode
		err := tx.NewSelect().Model(&c).Where("code_hash = ?", hashCode(in.Body.Code)).Scan(ctx)
		if err != nil {
			return ErrSSOCode
		}
		res, err := tx.NewUpdate().Model((*ssoCode)(nil)).Set("used_at = ?", now).
			Where("code_hash = ? AND used_at IS NULL AND expires_at > ?", c.CodeHash, now).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrSSOCode
		}
		if err := tx.NewSelect().Model(&user).Where("id = ?", c.UserID).Scan(ctx); err != nil {
			return err
		}
		t, err := s.tenants.Get(ctx, tx, c.TenantID)
		if err != nil {
			return err
		}
		if ctx, err = s.bindTenant(ctx, tx, t); err != nil {
			return err
		}
		if err := tx.NewSelect().Model(&m).Where("?TableAlias.user_id = ? AND ?TableAlias.is_active", user.ID).Scan(ctx); err != nil {
			return ErrSSOCode
		}
		refresh, _, err = s.refresh.Issue(ctx, tx, user.ID, t.ID)
		return err
	})
	if errors.Is(err, ErrSSOCode) {
		return nil, huma.ErrorWithHeaders(huma.Error401Unauthorized(publicMessage(ErrSSOCode)), bearerChallenge)
	}
	if err != nil {
		return nil, err
	}
	pair, err := s.tokenPair(ctx, &user, m.TenantID, m.Role, refresh)
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: *pair}, nil
}
