package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// SignedCheckpoint is a signed statement of a tenant's Merkle tree: its size
// (the number of events it covers, seq 1 to Size) and root hash. Note is the
// signed note (golang.org/x/mod/sumdb/note) whose text is
//
//	<origin>
//	<size>
//	<root hash, standard base64>
//
// as tlog.FormatTree writes it, but with the deployment's origin
// (Store.Origin + "/" + tenant id) in place of the checksum database's.
type SignedCheckpoint struct {
	TenantID  uuid.UUID
	Origin    string
	Size      int64
	Root      tlog.Hash
	Note      []byte
	CreatedAt time.Time
}

// checkpointRow is a row of audit_checkpoints.
type checkpointRow struct {
	bun.BaseModel `bun:"table:audit_checkpoints"`

	TenantID  uuid.UUID `bun:"tenant_id,pk,type:uuid"`
	ID        uuid.UUID `bun:"id,pk,type:uuid"`
	Size      int64     `bun:"size"`
	RootHash  []byte    `bun:"root_hash"`
	Note      string    `bun:"note"`
	CreatedAt time.Time `bun:"created_at"`
}

// treeHashRow is a row of audit_tree_hashes: tlog's stored hash number Idx of
// a tenant's tree.
type treeHashRow struct {
	bun.BaseModel `bun:"table:audit_tree_hashes"`

	TenantID uuid.UUID `bun:"tenant_id,pk,type:uuid"`
	Idx      int64     `bun:"idx,pk"`
	Hash     []byte    `bun:"hash"`
}

// GenerateNoteKey returns a new Ed25519 signer key and its verifier key in
// the golang.org/x/mod/sumdb/note format, for name (a host-like name such as
// "audit.example.com"). Keep skey secret and give vkey to tenants: it is all
// [VerifyExport] needs. Load them with note.NewSigner and note.NewVerifier.
func GenerateNoteKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate key: %w", err)
	}
	return skey, vkey, nil
}

// LeafHash returns the Merkle leaf hash of an event with the given chain
// hash: tlog.RecordHash(chainHash). The tree's record data is the chain hash,
// so a leaf commits to its event and to every event before it.
func LeafHash(chainHash []byte) tlog.Hash { return tlog.RecordHash(chainHash) }

// Checkpoint seals the events recorded so far (see [Store.Seal]), extends
// the tenant's Merkle tree to the end of its chain, verifying the new
// events' links on the way, and signs a checkpoint
// over it with signer. The checkpoint is stored in audit_checkpoints and
// returned. It runs in db's transaction, or in one of its own; checkpoints of
// one tenant are serialized.
//
// The leaves of the tree are the events' chain hashes in seq order (see
// [LeafHash]); its stored hashes are kept in audit_tree_hashes. Checkpoint
// returns a [*ChainError] when a new event does not verify, and signs
// nothing then.
func (s *Store) Checkpoint(ctx context.Context, db bun.IDB, signer note.Signer, tenantID uuid.UUID) (*SignedCheckpoint, error) {
	var cp *SignedCheckpoint
	err := inTx(ctx, db, func(ctx context.Context, tx bun.IDB) error {
		if _, err := s.Seal(ctx, tx); err != nil {
			return err
		}
		var size int64
		var hash []byte
		err := tx.NewRaw(`INSERT INTO audit_trees (tenant_id, size, hash) VALUES (?, 0, ?)
ON CONFLICT (tenant_id) DO UPDATE SET size = audit_trees.size
RETURNING size, hash`, tenantID, genesis).Scan(ctx, &size, &hash)
		if err != nil {
			return fmt.Errorf("audit: lock tree: %w", err)
		}
		head, err := readHead(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if head.Seq < size {
			return &ChainError{Seq: head.Seq, Reason: ReasonHeadMismatch}
		}
		r := newHashReader(ctx, tx, tenantID)
		if err := extendTree(ctx, tx, r, tenantID, size, head.Seq); err != nil {
			return err
		}
		root, err := tlog.TreeHash(head.Seq, r)
		if err != nil {
			return fmt.Errorf("audit: tree hash: %w", err)
		}
		if _, err := tx.NewRaw("UPDATE audit_trees SET size = ?, hash = ? WHERE tenant_id = ?",
			head.Seq, root[:], tenantID).Exec(ctx); err != nil {
			return fmt.Errorf("audit: update tree: %w", err)
		}
		origin := s.origin(tenantID)
		text := fmt.Sprintf("%s\n%d\n%s\n", origin, head.Seq, root)
		signed, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			return fmt.Errorf("audit: sign checkpoint: %w", err)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("audit: new id: %w", err)
		}
		row := checkpointRow{
			TenantID: tenantID, ID: id, Size: head.Seq, RootHash: root[:],
			Note: string(signed), CreatedAt: s.now().UTC().Truncate(time.Microsecond),
		}
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("audit: insert checkpoint: %w", err)
		}
		cp = &SignedCheckpoint{
			TenantID: tenantID, Origin: origin, Size: head.Seq, Root: root,
			Note: signed, CreatedAt: row.CreatedAt,
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cp, nil
}

// extendTree adds the events from+1..to to the tenant's tree, checking their
// chain links.
func extendTree(ctx context.Context, tx bun.IDB, r *hashReader, tenantID uuid.UUID, from, to int64) error {
	w := newWalker()
	if from > 0 {
		var last chainRow
		err := tx.NewSelect().Model(&last).Column("seq", "event_id", "hash").
			Where("tenant_id = ? AND seq = ?", tenantID, from).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return &ChainError{Seq: from, Reason: ReasonSequenceGap}
		}
		if err != nil {
			return fmt.Errorf("audit: read events: %w", err)
		}
		w.next, w.prev, w.lastID = from+1, last.Hash, last.EventID
	}
	err := scanEvents(ctx, tx, tenantID, from+1, to, func(e *eventRow) error {
		if err := w.check(e); err != nil {
			return err
		}
		n := e.Seq - 1
		hashes, err := tlog.StoredHashesForRecordHash(n, LeafHash(e.Hash), r)
		if err != nil {
			return fmt.Errorf("audit: tree: %w", err)
		}
		base := tlog.StoredHashIndex(0, n)
		for i, h := range hashes {
			r.pending[base+int64(i)] = h
		}
		if len(r.pending) >= flushHashes {
			return r.flush(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if w.next != to+1 {
		return &ChainError{Seq: w.next, Reason: ReasonSequenceGap}
	}
	return r.flush(ctx)
}

// flushHashes is how many new tree hashes are written per statement.
const flushHashes = 2048

// maxCachedHashes bounds the read cache of a hashReader.
const maxCachedHashes = 1 << 16

// hashReader is a tlog.HashReader over audit_tree_hashes, with the hashes
// not yet written (pending) and a bounded cache of those read.
type hashReader struct {
	ctx     context.Context
	db      bun.IDB
	tenant  uuid.UUID
	pending map[int64]tlog.Hash
	cache   map[int64]tlog.Hash
}

func newHashReader(ctx context.Context, db bun.IDB, tenant uuid.UUID) *hashReader {
	return &hashReader{
		ctx: ctx, db: db, tenant: tenant,
		pending: make(map[int64]tlog.Hash),
		cache:   make(map[int64]tlog.Hash),
	}
}

// ReadHashes implements tlog.HashReader.
func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for _, i := range indexes {
		_, ok1 := r.pending[i]
		_, ok2 := r.cache[i]
		if !ok1 && !ok2 {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		if len(r.cache)+len(missing) > maxCachedHashes {
			clear(r.cache)
		}
		var rows []treeHashRow
		err := r.db.NewSelect().Model(&rows).
			Where("tenant_id = ? AND idx IN (?)", r.tenant, bun.In(missing)).Scan(r.ctx)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("audit: read tree hashes: %w", err)
		}
		for _, row := range rows {
			if len(row.Hash) != tlog.HashSize {
				return nil, fmt.Errorf("audit: tree hash %d has %d bytes", row.Idx, len(row.Hash))
			}
			r.cache[row.Idx] = tlog.Hash(row.Hash)
		}
	}
	for k, i := range indexes {
		h, ok := r.pending[i]
		if !ok {
			h, ok = r.cache[i]
		}
		if !ok {
			return nil, fmt.Errorf("audit: tree hash %d missing", i)
		}
		out[k] = h
	}
	return out, nil
}

// flush writes the pending hashes and keeps them in the cache.
func (r *hashReader) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	rows := make([]treeHashRow, 0, len(r.pending))
	for i, h := range r.pending {
		rows = append(rows, treeHashRow{TenantID: r.tenant, Idx: i, Hash: bytes.Clone(h[:])})
	}
	slices.SortFunc(rows, func(a, b treeHashRow) int { return cmp.Compare(a.Idx, b.Idx) })
	if _, err := r.db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return fmt.Errorf("audit: write tree hashes: %w", err)
	}
	if len(r.cache)+len(r.pending) > maxCachedHashes {
		clear(r.cache)
	}
	for i, h := range r.pending {
		r.cache[i] = h
	}
	clear(r.pending)
	return nil
}

// LatestCheckpoint returns the tenant's newest stored checkpoint, or an error
// wrapping [ErrNoCheckpoint].
func LatestCheckpoint(ctx context.Context, db bun.IDB, tenantID uuid.UUID) (*SignedCheckpoint, error) {
	var row checkpointRow
	err := db.NewSelect().Model(&row).Where("tenant_id = ?", tenantID).
		OrderExpr("size DESC, id DESC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w for tenant %s", ErrNoCheckpoint, tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	text, _, _ := strings.Cut(row.Note, "\n\n")
	origin, size, root, err := parseCheckpoint(text + "\n")
	if err != nil || size != row.Size || !bytes.Equal(root[:], row.RootHash) {
		return nil, fmt.Errorf("%w: stored checkpoint %s does not parse", ErrBadCheckpoint, row.ID)
	}
	return &SignedCheckpoint{
		TenantID: tenantID, Origin: origin, Size: size, Root: root,
		Note: []byte(row.Note), CreatedAt: row.CreatedAt.UTC(),
	}, nil
}

// VerifyCheckpoint checks that the log in the database still holds what cp
// signed: that the tenant's events 1 to cp.Size still verify as a chain and
// their leaves still hash to cp's root, and that the stored tree has that
// root too. It reads the events in batches and keeps O(log n) hashes in
// memory. It returns a [*ChainError] for a broken chain and an error wrapping
// [ErrBadCheckpoint] for a root that does not match. It does not check cp's
// signature (open cp.Note with note.Open for that).
func VerifyCheckpoint(ctx context.Context, db bun.IDB, cp *SignedCheckpoint) error {
	var size int64
	err := db.NewRaw("SELECT size FROM audit_trees WHERE tenant_id = ?", cp.TenantID).Scan(ctx, &size)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: read tree: %w", err)
	}
	if size < cp.Size {
		return fmt.Errorf("%w: tree of tenant %s has %d events, checkpoint %d", ErrBadCheckpoint, cp.TenantID, size, cp.Size)
	}
	root, err := tlog.TreeHash(cp.Size, newHashReader(ctx, db, cp.TenantID))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if root != cp.Root {
		return fmt.Errorf("%w: stored tree of tenant %s at size %d has root %s, checkpoint %s", ErrBadCheckpoint, cp.TenantID, cp.Size, root, cp.Root)
	}
	w := newWalker()
	var tree merkle
	err = scanEvents(ctx, db, cp.TenantID, 1, cp.Size, func(e *eventRow) error {
		if err := w.check(e); err != nil {
			return err
		}
		tree.add(LeafHash(e.Hash))
		return nil
	})
	if err != nil {
		return err
	}
	if w.next != cp.Size+1 {
		return &ChainError{Seq: w.next, Reason: ReasonSequenceGap}
	}
	if root := tree.root(); root != cp.Root {
		return fmt.Errorf("%w: events of tenant %s hash to root %s, checkpoint %s", ErrBadCheckpoint, cp.TenantID, root, cp.Root)
	}
	return nil
}

// merkle computes an RFC 6962 tree root from its leaves in order, keeping
// only the roots of the complete subtrees so far.
type merkle struct {
	hashes []tlog.Hash // roots of complete subtrees, largest first
	sizes  []int64
}

func (m *merkle) add(leaf tlog.Hash) {
	m.hashes, m.sizes = append(m.hashes, leaf), append(m.sizes, 1)
	for n := len(m.sizes); n >= 2 && m.sizes[n-1] == m.sizes[n-2]; n = len(m.sizes) {
		m.hashes[n-2] = tlog.NodeHash(m.hashes[n-2], m.hashes[n-1])
		m.sizes[n-2] *= 2
		m.hashes, m.sizes = m.hashes[:n-1], m.sizes[:n-1]
	}
}

func (m *merkle) root() tlog.Hash {
	if len(m.hashes) == 0 {
		return tlog.Hash(sha256.Sum256(nil))
	}
	h := m.hashes[len(m.hashes)-1]
	for i := len(m.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(m.hashes[i], h)
	}
	return h
}

// parseCheckpoint parses a checkpoint note's text, exactly as Checkpoint
// writes it.
func parseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	bad := fmt.Errorf("%w: malformed checkpoint text", ErrBadCheckpoint)
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" || lines[0] == "" {
		return "", 0, root, bad
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, bad
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return "", 0, root, bad
	}
	return lines[0], size, tlog.Hash(h), nil
}
