package server

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/mod/sumdb/note"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// Audit actions the server records. Every data modification records one in
// the transaction of the change; the security events (auth.*) record the
// attempt itself.
const (
	ActionUserCreated          = "user.created"
	ActionUserUpdated          = "user.updated"
	ActionUserPasswordChanged  = "user.password_changed"
	ActionUserSuperadmin       = "user.superadmin_granted"
	ActionTenantCreated        = "tenant.created"
	ActionTenantUpdated        = "tenant.updated"
	ActionTenantDeleted        = "tenant.deleted"
	ActionMemberCreated        = "member.created"
	ActionMemberUpdated        = "member.updated"
	ActionMemberRoleChanged    = "member.role_changed"
	ActionMemberRemoved        = "member.removed"
	ActionLoginSucceeded       = "auth.login_succeeded"
	ActionLoginFailed          = "auth.login_failed"
	ActionRefreshReuseDetected = "auth.refresh_reuse_detected"
)

// systemActor is the actor of changes made outside a request (the server
// itself, first start).
var systemActor = audit.Actor{Type: audit.ActorSystem, ID: "saaskit"}

// CLIActor is the actor the saaskit command puts in the context of the
// changes it makes.
var CLIActor = audit.Actor{Type: audit.ActorSystem, ID: "cli"}

// userActor is a user acting.
func userActor(id uuid.UUID) audit.Actor {
	return audit.Actor{Type: audit.ActorUser, ID: id.String()}
}

// Shapes of audited resources: only the fields an audit reader needs, never
// a password hash.
type userAudit struct {
	Email        string `json:"email"`
	FullName     string `json:"full_name"`
	IsSuperadmin bool   `json:"is_superadmin"`
}

type memberAudit struct {
	UserID   uuid.UUID  `json:"user_id"`
	Email    string     `json:"email,omitempty"`
	Role     authn.Role `json:"role"`
	IsActive bool       `json:"is_active"`
}

type tenantAudit struct {
	Slug   string         `json:"slug"`
	Name   string         `json:"name"`
	Status tenancy.Status `json:"status"`
	Plan   string         `json:"plan"`
}

func auditUser(u *User) userAudit {
	return userAudit{Email: u.Email, FullName: u.FullName, IsSuperadmin: u.IsSuperadmin}
}

func auditTenant(t *tenancy.Tenant) tenantAudit {
	return tenantAudit{Slug: t.Slug, Name: t.Name, Status: t.Status, Plan: t.Plan}
}

func auditMember(m *Member) memberAudit {
	v := memberAudit{UserID: m.UserID, Role: m.Role, IsActive: m.IsActive}
	if m.User != nil {
		v.Email = m.User.Email
	}
	return v
}

// record writes ev through db, which is the transaction of the change, so
// that the change and its event commit or roll back together. An event
// without an actor, in a context without one, is the system's.
func (s *Server) record(ctx context.Context, db bun.IDB, ev *audit.Event) error {
	if s.recorder == nil {
		return nil
	}
	if ev.Actor.IsZero() {
		if _, ok := audit.ActorFromContext(ctx); !ok {
			ev.Actor = systemActor
		}
	}
	if err := s.recorder.Record(ctx, db, ev); err != nil {
		return fmt.Errorf("server: audit %s: %w", ev.Action, err)
	}
	return nil
}

// requestInfo describes r for audit events: its request id, client IP
// (forwarding headers believed from trusted proxies only) and user agent,
// cut to a bounded length of valid UTF-8 so that no request header can make
// an event invalid.
func (s *Server) requestInfo(r *http.Request, id string) audit.RequestInfo {
	info := audit.RequestInfo{RequestID: id, UserAgent: cleanText(r.UserAgent(), 512)}
	if ip := s.clientIP(r); ip.IsValid() {
		info.IP = ip.String()
	}
	return info
}

// cleanText returns s as valid UTF-8 without NUL bytes, cut to at most max
// bytes on a rune boundary.
func cleanText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// auditKeyID is the one row of audit_signing_keys.
const auditKeyID = 1

// auditSigningKey persists the checkpoint signer key generated when
// SAASKIT_AUDIT_SIGNING_KEY is not set.
type auditSigningKey struct {
	bun.BaseModel `bun:"table:audit_signing_keys"`

	ID          int64     `bun:"id,pk"`
	SignerKey   string    `bun:"signer_key,notnull"`
	VerifierKey string    `bun:"verifier_key,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

// auditKeyName is the name of generated checkpoint keys.
const auditKeyName = "saaskit-audit"

// loadAuditSigner sets the checkpoint signer: SAASKIT_AUDIT_SIGNING_KEY, or
// the key kept in the database, generated on first start.
func (s *Server) loadAuditSigner(ctx context.Context) error {
	skey := s.cfg.AuditSigningKey
	if skey == "" {
		row := new(auditSigningKey)
		err := s.db.NewSelect().Model(row).Where("id = ?", auditKeyID).Scan(ctx)
		switch {
		case err == nil:
			skey = row.SignerKey
		case errors.Is(err, sql.ErrNoRows):
			sk, vk, err := audit.GenerateNoteKey(auditKeyName)
			if err != nil {
				return err
			}
			res, err := s.db.NewInsert().Model(&auditSigningKey{ID: auditKeyID, SignerKey: sk, VerifierKey: vk, CreatedAt: s.now().UTC()}).
				On("CONFLICT (id) DO NOTHING").Exec(ctx)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return s.loadAuditSigner(ctx) // another replica won
			}
			skey = sk
			s.log.Warn("generated an audit checkpoint signing key and stored it in the database; set SAASKIT_AUDIT_SIGNING_KEY (saaskit audit keygen) so that the key is not kept beside the log it signs",
				slog.String("verifier_key", vk))
		default:
			return err
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return fmt.Errorf("%w: audit signing key: %v", ErrConfig, err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return err
	}
	s.signer, s.verifierKey = signer, vkey
	return nil
}

// verifierKey derives the public verifier key of a note signer key.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", fmt.Errorf("%w: audit signing key is malformed", ErrConfig)
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", fmt.Errorf("%w: audit signing key is not an Ed25519 note key", ErrConfig)
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// AuditVerifierKey returns the public key that checks the server's signed
// audit checkpoints and exports (saaskit audit verify -key).
func (s *Server) AuditVerifierKey() string { return s.verifierKey }

// auditSealInterval is how often the server chains recorded audit events
// (see [audit.Store.Seal]): an event committed by a request is in its
// tenant's hash chain within about this long, plus the time of one Seal.
const auditSealInterval = 250 * time.Millisecond

// SealAudit chains the audit events recorded so far (see
// [audit.Store.Seal]) and returns how many it chained. The server runs it
// every quarter second while it serves, and before it lists, verifies,
// checkpoints or exports a log.
func (s *Server) SealAudit(ctx context.Context) (int, error) {
	n, err := s.auditStore.Seal(ctx, s.db)
	if err != nil {
		return n, fmt.Errorf("server: seal audit events: %w", err)
	}
	return n, nil
}

// AuditCheckpoint signs a checkpoint of tenant's audit chain (uuid.Nil: the
// platform chain) covering every event recorded so far.
func (s *Server) AuditCheckpoint(ctx context.Context, tenant uuid.UUID) (*audit.SignedCheckpoint, error) {
	var cp *audit.SignedCheckpoint
	err := s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		cp, err = s.auditStore.Checkpoint(ctx, tx, s.signer, tenant)
		return err
	})
	return cp, err
}

// AuditCheckpointAll signs a checkpoint for every chain with events that no
// checkpoint covers yet, and returns how many it signed. It goes on after a
// tenant fails and returns the first error.
func (s *Server) AuditCheckpointAll(ctx context.Context) (int, error) {
	if _, err := s.SealAudit(ctx); err != nil {
		return 0, err
	}
	var tenants []uuid.UUID
	err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		return db.NewRaw(`SELECT h.tenant_id FROM audit_heads AS h
LEFT JOIN audit_trees AS t ON t.tenant_id = h.tenant_id
WHERE t.size IS NULL OR t.size < h.seq ORDER BY h.tenant_id`).Scan(ctx, &tenants)
	})
	if err != nil {
		return 0, fmt.Errorf("server: audit checkpoints: %w", err)
	}
	n := 0
	var first error
	for _, t := range tenants {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if _, err := s.AuditCheckpoint(ctx, t); err != nil {
			s.log.Error("audit checkpoint", slog.String("tenant", t.String()), slog.Any("error", err))
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

// AuditExport writes tenant's audit events with inclusion proofs and a
// signed checkpoint covering all of them (signing one first when the latest
// does not cover the whole chain), as [audit.Export] does. The file verifies
// offline with [VerifyAuditExport] and the key of [Server.AuditVerifierKey].
func (s *Server) AuditExport(ctx context.Context, tenant uuid.UUID, w io.Writer) error {
	ctx = tenancy.System(ctx)
	if _, err := s.SealAudit(ctx); err != nil {
		return err
	}
	var cp *audit.SignedCheckpoint
	err := s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		var head int64
		err := db.NewRaw("SELECT seq FROM audit_heads WHERE tenant_id = ?", tenant).Scan(ctx, &head)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		latest, err := audit.LatestCheckpoint(ctx, db, tenant)
		if err == nil && latest.Size == head {
			cp = latest
			return nil
		}
		if err != nil && !errors.Is(err, audit.ErrNoCheckpoint) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cp == nil {
		if cp, err = s.AuditCheckpoint(ctx, tenant); err != nil {
			return err
		}
	}
	return s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		return audit.Export(ctx, db, tenant, w, cp)
	})
}

// VerifyAuditExport checks an audit export offline with the verifier key
// alone: the checkpoint's signature, every event's hash and link, and every
// inclusion proof. No database is involved.
func VerifyAuditExport(r io.Reader, verifierKey string) (audit.ExportResult, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return audit.ExportResult{}, fmt.Errorf("%w: verifier key: %v", ErrInvalidInput, err)
	}
	return audit.VerifyExport(r, v)
}

// checkpointLoop chains recorded audit events every auditSealInterval and
// signs checkpoints for chains with new events every
// SAASKIT_AUDIT_CHECKPOINT_INTERVAL (when there is a signer), until ctx is
// done.
func (s *Server) checkpointLoop(ctx context.Context) {
	seal := time.NewTicker(auditSealInterval)
	defer seal.Stop()
	var checkpoints <-chan time.Time
	if every := s.cfg.AuditCheckpointInterval; every > 0 && s.signer != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		checkpoints = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-seal.C:
			if _, err := s.SealAudit(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("audit seal", slog.Any("error", err))
			}
		case <-checkpoints:
			n, err := s.AuditCheckpointAll(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("audit checkpoints", slog.Any("error", err))
			}
			if n > 0 {
				s.log.Info("signed audit checkpoints", slog.Int("chains", n))
			}
		}
	}
}
