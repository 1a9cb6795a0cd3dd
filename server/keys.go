package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/authn"
)

// keySetID is the one row of signing_keys.
const keySetID = 1

func (s *Server) keySetConfig() authn.KeySetConfig {
	return authn.KeySetConfig{
		Algorithm:   jose.SignatureAlgorithm(s.cfg.JWTAlgorithm),
		MaxTokenTTL: s.cfg.AccessTokenTTL,
	}
}

// loadKeys reads the key set from the database, creating and saving one on
// first start. Several replicas starting at once agree on one set: the first
// insert wins and the others read it.
func (s *Server) loadKeys(ctx context.Context) (*authn.KeySet, error) {
	ks := authn.NewKeySet(s.keySetConfig())
	row := new(signingKey)
	err := s.db.NewSelect().Model(row).Where("id = ?", keySetID).Scan(ctx)
	if err == nil {
		return ks, json.Unmarshal([]byte(row.KeySet), ks)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err := ks.Rotate(s.now()); err != nil { // an active key and a next one
		return nil, err
	}
	b, err := json.Marshal(ks)
	if err != nil {
		return nil, err
	}
	res, err := s.db.NewInsert().Model(&signingKey{ID: keySetID, KeySet: string(b), UpdatedAt: s.now().UTC()}).
		On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return s.loadKeys(ctx)
	}
	s.log.Info("created signing keys", slog.String("algorithm", s.cfg.JWTAlgorithm))
	return ks, nil
}

// RotateKeys rotates the signing keys now: the next key starts signing, the
// active one retires (still published until its tokens expire) and a new next
// key is published. Other replicas pick the change up within a minute.
func (s *Server) RotateKeys(ctx context.Context) error {
	return s.rotateKeys(ctx, true)
}

// rotateKeys reloads the key set and, if forced or the active key is older
// than the rotation interval, rotates and saves it, in one transaction that
// holds the row so that two replicas do not rotate at once.
func (s *Server) rotateKeys(ctx context.Context, force bool) error {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row := new(signingKey)
		q := tx.NewSelect().Model(row).Where("id = ?", keySetID)
		if tx.Dialect().Name() == dialect.PG {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}
		fresh := authn.NewKeySet(s.keySetConfig())
		if err := json.Unmarshal([]byte(row.KeySet), fresh); err != nil {
			return err
		}
		now := s.now()
		due := force
		if k, ok := fresh.SigningKey(); ok && s.cfg.KeyRotateInterval > 0 && now.Sub(k.ActivatedAt) >= s.cfg.KeyRotateInterval {
			due = true
		}
		pruned := len(fresh.Prune(now)) > 0
		if due {
			if err := fresh.Rotate(now); err != nil {
				return err
			}
			s.log.Info("rotated signing keys")
		}
		if due || pruned {
			b, err := json.Marshal(fresh)
			if err != nil {
				return err
			}
			if _, err := tx.NewUpdate().Model(&signingKey{ID: keySetID, KeySet: string(b), UpdatedAt: now.UTC()}).WherePK().Exec(ctx); err != nil {
				return err
			}
		}
		b, err := json.Marshal(fresh)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, s.keys)
	})
}

// rotateLoop reloads and, when due, rotates the keys every minute until ctx
// is done.
func (s *Server) rotateLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.rotateKeys(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Error("signing key rotation", slog.Any("error", err))
			}
		}
	}
}
