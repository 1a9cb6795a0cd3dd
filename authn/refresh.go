package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Errors returned by [RefreshStore].
var (
	// ErrRefreshInvalid means the refresh token is unknown or not one this
	// package made.
	ErrRefreshInvalid = errors.New("authn: refresh token invalid")
	// ErrRefreshExpired means the refresh token's lifetime has passed.
	ErrRefreshExpired = errors.New("authn: refresh token expired")
	// ErrRefreshRevoked means the refresh token's family was revoked (logout,
	// password change, or an earlier reuse).
	ErrRefreshRevoked = errors.New("authn: refresh token revoked")
	// ErrRefreshReuse means an already rotated refresh token was presented
	// again after the grace period: the token may have been stolen, and its
	// whole family has been revoked.
	ErrRefreshReuse = errors.New("authn: refresh token reused")
)

// RefreshTokenPrefix starts every refresh token, so that one is easy to
// recognise (in logs, in secret scanners).
const RefreshTokenPrefix = "skr_"

// Refresh token defaults.
const (
	DefaultRefreshTTL = 30 * 24 * time.Hour
	DefaultReuseGrace = 10 * time.Second
)

// refreshTokenLen is the length of a token: prefix and 32 random bytes.
var refreshTokenLen = len(RefreshTokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// RefreshToken is a stored refresh token (table refresh_tokens). The token
// itself is not stored, only its SHA-256.
type RefreshToken struct {
	bun.BaseModel `bun:"table:refresh_tokens"`

	ID uuid.UUID `bun:"id,pk" json:"id"`
	// FamilyID is shared by every token descending from one login.
	FamilyID uuid.UUID `bun:"family_id,notnull" json:"family_id"`
	// ParentID is the token this one replaced; uuid.Nil for a family's first.
	ParentID uuid.UUID `bun:"parent_id,nullzero" json:"parent_id"`
	UserID   uuid.UUID `bun:"user_id,notnull" json:"user_id"`
	// TenantID is the tenant of the login; uuid.Nil for none.
	TenantID  uuid.UUID `bun:"tenant_id,nullzero" json:"tenant_id"`
	TokenHash []byte    `bun:"token_hash,notnull" json:"-"`
	UserAgent string    `bun:"user_agent,nullzero" json:"user_agent,omitempty"`
	IP        string    `bun:"ip,nullzero" json:"ip,omitempty"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
	ExpiresAt time.Time `bun:"expires_at,notnull" json:"expires_at"`
	// UsedAt is when the token was rotated; zero while unused.
	UsedAt time.Time `bun:"used_at,nullzero" json:"used_at"`
	// RevokedAt is when the token's family was revoked; zero if it was not.
	RevokedAt time.Time `bun:"revoked_at,nullzero" json:"revoked_at"`
}

// ClientInfo describes the client a refresh token family was issued to. Both
// fields are optional and informational.
type ClientInfo struct {
	UserAgent string
	IP        string
}

// RefreshStore issues, rotates and revokes opaque refresh tokens stored
// hashed in the refresh_tokens table (see [Migrate]). Its zero value is ready
// to use with the defaults. Every method takes the bun.IDB to run on, so that
// a caller's transaction is used. It is safe for concurrent use, and rotation
// is safe against concurrent presentations of one token, also from other
// processes.
//
// One login starts a family; every [RefreshStore.Rotate] marks the presented
// token used and issues its successor in the family. A used token presented
// again within ReuseGrace gets another successor (a client that lost the
// response retries); after that, the reuse revokes the whole family. A family
// counts as revoked as soon as any of its tokens is, so a successor created
// concurrently with a logout does not outlive it.
type RefreshStore struct {
	// TTL is the lifetime of each token; default DefaultRefreshTTL (30 days).
	// Each rotation starts a new TTL.
	TTL time.Duration
	// ReuseGrace is how long after its rotation a token may be presented
	// again; default DefaultReuseGrace (10 seconds); negative means none.
	ReuseGrace time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

func (s *RefreshStore) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	// Postgres keeps microseconds: round-trips then compare equal.
	return now().UTC().Truncate(time.Microsecond)
}

func (s *RefreshStore) ttl() time.Duration {
	if s.TTL <= 0 {
		return DefaultRefreshTTL
	}
	return s.TTL
}

func (s *RefreshStore) grace() time.Duration {
	switch {
	case s.ReuseGrace < 0:
		return 0
	case s.ReuseGrace == 0:
		return DefaultReuseGrace
	}
	return s.ReuseGrace
}

// HashRefreshToken returns the SHA-256 of token, as stored in token_hash.
func HashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func newRefreshToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("authn: refresh token: %w", err)
	}
	return RefreshTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Issue starts a new family for a login of userID into tenantID (uuid.Nil
// for none) and returns its first token and record.
func (s *RefreshStore) Issue(ctx context.Context, db bun.IDB, userID, tenantID uuid.UUID) (string, *RefreshToken, error) {
	return s.IssueWithClient(ctx, db, userID, tenantID, ClientInfo{})
}

// IssueWithClient is [RefreshStore.Issue] recording the client's user agent
// and IP address with the family.
func (s *RefreshStore) IssueWithClient(ctx context.Context, db bun.IDB, userID, tenantID uuid.UUID, client ClientInfo) (string, *RefreshToken, error) {
	if userID == uuid.Nil {
		return "", nil, errors.New("authn: refresh: empty user id")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", nil, fmt.Errorf("authn: refresh: %w", err)
	}
	rec := &RefreshToken{
		ID: id, FamilyID: id, UserID: userID, TenantID: tenantID,
		UserAgent: client.UserAgent, IP: client.IP,
	}
	token, err := s.insert(ctx, db, rec, s.now())
	if err != nil {
		return "", nil, err
	}
	return token, rec, nil
}

// insert stores rec with a fresh token created at now.
func (s *RefreshStore) insert(ctx context.Context, db bun.IDB, rec *RefreshToken, now time.Time) (string, error) {
	token, err := newRefreshToken()
	if err != nil {
		return "", err
	}
	if rec.ID == uuid.Nil {
		if rec.ID, err = uuid.NewV7(); err != nil {
			return "", fmt.Errorf("authn: refresh: %w", err)
		}
	}
	rec.TokenHash = HashRefreshToken(token)
	rec.CreatedAt = now
	rec.ExpiresAt = now.Add(s.ttl())
	if _, err := db.NewInsert().Model(rec).Exec(ctx); err != nil {
		return "", fmt.Errorf("authn: refresh: insert: %w", err)
	}
	return token, nil
}

// lookup finds the record of token, or ErrRefreshInvalid.
func (s *RefreshStore) lookup(ctx context.Context, db bun.IDB, token string) (*RefreshToken, error) {
	if len(token) != refreshTokenLen || !strings.HasPrefix(token, RefreshTokenPrefix) {
		return nil, ErrRefreshInvalid
	}
	rec := new(RefreshToken)
	err := db.NewSelect().Model(rec).Where("token_hash = ?", HashRefreshToken(token)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrRefreshInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("authn: refresh: lookup: %w", err)
	}
	return rec, nil
}

// familyRevoked reports whether any token of the family is revoked.
func familyRevoked(ctx context.Context, db bun.IDB, familyID uuid.UUID) (bool, error) {
	ok, err := db.NewSelect().Model((*RefreshToken)(nil)).
		Where("family_id = ?", familyID).Where("revoked_at IS NOT NULL").Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("authn: refresh: %w", err)
	}
	return ok, nil
}

// Rotate exchanges token for its successor in the same family and returns the
// new token and its record. It returns an error wrapping [ErrRefreshInvalid]
// for an unknown token, [ErrRefreshRevoked] for a revoked family,
// [ErrRefreshExpired] for an expired token, and [ErrRefreshReuse] for a token
// already rotated more than ReuseGrace ago.
//
// On ErrRefreshReuse, Rotate has revoked the family through db: if db is a
// transaction, commit it, or the revocation is lost.
func (s *RefreshStore) Rotate(ctx context.Context, db bun.IDB, token string) (string, *RefreshToken, error) {
	now := s.now()
	rec, err := s.lookup(ctx, db, token)
	if err != nil {
		return "", nil, err
	}
	if !rec.RevokedAt.IsZero() {
		return "", nil, ErrRefreshRevoked
	}
	if revoked, err := familyRevoked(ctx, db, rec.FamilyID); err != nil {
		return "", nil, err
	} else if revoked {
		return "", nil, ErrRefreshRevoked
	}
	if !now.Before(rec.ExpiresAt) {
		return "", nil, ErrRefreshExpired
	}
	if rec.UsedAt.IsZero() {
		// Only one of several concurrent rotations can flip used_at.
		res, err := db.NewUpdate().Model((*RefreshToken)(nil)).
			Set("used_at = ?", now).
			Where("id = ?", rec.ID).Where("used_at IS NULL").Where("revoked_at IS NULL").
			Exec(ctx)
		if err != nil {
			return "", nil, fmt.Errorf("authn: refresh: mark used: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return "", nil, fmt.Errorf("authn: refresh: mark used: %w", err)
		}
		if n == 1 {
			return s.successor(ctx, db, rec, now)
		}
		// Another rotation won; look at what it left.
		if err := db.NewSelect().Model(rec).WherePK().Scan(ctx); err != nil {
			return "", nil, fmt.Errorf("authn: refresh: reload: %w", err)
		}
		if !rec.RevokedAt.IsZero() {
			return "", nil, ErrRefreshRevoked
		}
	}
	if g := s.grace(); g > 0 && now.Sub(rec.UsedAt) <= g {
		return s.successor(ctx, db, rec, now)
	}
	if err := revokeFamily(ctx, db, rec.FamilyID, now); err != nil {
		return "", nil, err
	}
	return "", nil, ErrRefreshReuse
}

func (s *RefreshStore) successor(ctx context.Context, db bun.IDB, parent *RefreshToken, now time.Time) (string, *RefreshToken, error) {
	rec := &RefreshToken{
		FamilyID: parent.FamilyID, ParentID: parent.ID,
		UserID: parent.UserID, TenantID: parent.TenantID,
		UserAgent: parent.UserAgent, IP: parent.IP,
	}
	token, err := s.insert(ctx, db, rec, now)
	if err != nil {
		return "", nil, err
	}
	return token, rec, nil
}

func revokeFamily(ctx context.Context, db bun.IDB, familyID uuid.UUID, now time.Time) error {
	_, err := db.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", now).
		Where("family_id = ?", familyID).Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("authn: refresh: revoke: %w", err)
	}
	return nil
}

// RevokeFamily revokes every token of token's family: a logout. It returns an
// error wrapping [ErrRefreshInvalid] for an unknown token; revoking a revoked
// family again is not an error.
func (s *RefreshStore) RevokeFamily(ctx context.Context, db bun.IDB, token string) error {
	rec, err := s.lookup(ctx, db, token)
	if err != nil {
		return err
	}
	return revokeFamily(ctx, db, rec.FamilyID, s.now())
}

// RevokeUser revokes every refresh token of userID, in every tenant: use it
// when the password changes or the account is disabled.
func (s *RefreshStore) RevokeUser(ctx context.Context, db bun.IDB, userID uuid.UUID) error {
	_, err := db.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", s.now()).
		Where("user_id = ?", userID).Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("authn: refresh: revoke user: %w", err)
	}
	return nil
}

// RevokeUserTenant revokes the user's refresh tokens for one tenant: its
// sessions there end when it is removed from or deactivated in the tenant,
// while its sessions in other tenants go on.
func (s *RefreshStore) RevokeUserTenant(ctx context.Context, db bun.IDB, userID, tenantID uuid.UUID) error {
	_, err := db.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", s.now()).
		Where("user_id = ?", userID).Where("tenant_id = ?", tenantID).Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("authn: refresh: revoke user in tenant: %w", err)
	}
	return nil
}

// DeleteExpired deletes the tokens that expired before the given time and
// returns how many it deleted. Run it now and then; keep some margin (a day)
// so that a reused expired token still meets its record.
func (s *RefreshStore) DeleteExpired(ctx context.Context, db bun.IDB, before time.Time) (int64, error) {
	res, err := db.NewDelete().Model((*RefreshToken)(nil)).
		Where("expires_at < ?", before.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("authn: refresh: delete expired: %w", err)
	}
	return res.RowsAffected()
}
