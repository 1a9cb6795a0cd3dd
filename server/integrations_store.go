package server

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/tenancy"
)

// syncStore is the internal data a provider's handler reads and writes
// while it applies an event, in the tenant of the context. txStore runs
// each call as a statement of the transaction; batchStore serves reads from
// what it loaded for a whole batch job at once and holds writes until
// flush, which writes each table with one statement, so that a batch of a
// hundred events costs about ten round trips instead of seven hundred.
type syncStore interface {
	// link returns the link of an external object, or nil.
	link(ctx context.Context, conn uuid.UUID, kind, externalID string) (*integrationLink, error)
	// saveLink inserts or replaces a link.
	saveLink(ctx context.Context, l *integrationLink) error
	// userByID and userByEmail return a user, or nil.
	userByID(ctx context.Context, id uuid.UUID) (*User, error)
	userByEmail(ctx context.Context, email string) (*User, error)
	insertUser(ctx context.Context, u *User) error
	// member returns the membership of a user, with the user, or
	// ErrNotFound.
	member(ctx context.Context, userID uuid.UUID) (*Member, error)
	insertMember(ctx context.Context, m *Member) error
	// updateMember writes a member's role, is_active and updated_at.
	updateMember(ctx context.Context, m *Member) error
	deleteMember(ctx context.Context, m *Member) error
	// record records an audit event of the change.
	record(ctx context.Context, ev *audit.Event) error
}

// txStore is the syncStore that runs every call in tx.
type txStore struct {
	s  *Server
	tx bun.Tx
}

func (st txStore) link(ctx context.Context, conn uuid.UUID, kind, externalID string) (*integrationLink, error) {
	return loadLink(ctx, st.tx, conn, kind, externalID)
}

func (st txStore) saveLink(ctx context.Context, l *integrationLink) error {
	_, err := st.tx.NewInsert().Model(l).Apply(upsertLink).Exec(ctx)
	return err
}

// upsertLink makes a links INSERT replace the link it conflicts with.
func upsertLink(q *bun.InsertQuery) *bun.InsertQuery {
	return q.On("CONFLICT (connection_id, kind, external_id) DO UPDATE").
		Set("internal_id = EXCLUDED.internal_id").Set("version = EXCLUDED.version").
		Set("state = EXCLUDED.state").Set("deleted = EXCLUDED.deleted").Set("updated_at = EXCLUDED.updated_at")
}

func (st txStore) userByID(ctx context.Context, id uuid.UUID) (*User, error) {
	return st.user(ctx, "id = ?", id)
}

func (st txStore) userByEmail(ctx context.Context, email string) (*User, error) {
	return st.user(ctx, "email = ?", email)
}

func (st txStore) user(ctx context.Context, where string, arg any) (*User, error) {
	u := new(User)
	err := st.tx.NewSelect().Model(u).Where(where, arg).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}

func (st txStore) insertUser(ctx context.Context, u *User) error {
	_, err := st.tx.NewInsert().Model(u).Exec(ctx)
	return err
}

func (st txStore) member(ctx context.Context, userID uuid.UUID) (*Member, error) {
	return getMember(ctx, st.tx, userID)
}

func (st txStore) insertMember(ctx context.Context, m *Member) error {
	_, err := st.tx.NewInsert().Model(m).Exec(ctx)
	return err
}

func (st txStore) updateMember(ctx context.Context, m *Member) error {
	_, err := st.tx.NewUpdate().Model(m).Column("role", "is_active", "updated_at").WherePK().Exec(ctx)
	return err
}

func (st txStore) deleteMember(ctx context.Context, m *Member) error {
	_, err := st.tx.NewDelete().Model(m).WherePK().Exec(ctx)
	return err
}

func (st txStore) record(ctx context.Context, ev *audit.Event) error {
	return st.s.record(ctx, st.tx, ev)
}

// linkKey names a link.
type linkKey struct {
	conn             uuid.UUID
	kind, externalID string
}

// memberEntry is what a batchStore knows of a user's membership.
type memberEntry struct {
	m       *Member // the membership now; nil: none
	stored  bool    // a row exists in the database
	removed bool    // the stored row is to be deleted (and m, if any, inserted)
	changed bool    // the stored row is to be updated from m
}

// batchStore is the syncStore of a batch job's fast path. load reads at
// once the links, users and memberships its events name; a read it did not
// load falls through to the transaction and is kept. Writes change what it
// holds, so that later events of the batch see them, and flush writes them.
// A failed write fails flush and so the transaction; the job then applies
// its events again with a txStore, one savepoint each.
type batchStore struct {
	direct txStore

	links     map[linkKey]*integrationLink // nil: none
	saved     []linkKey                    // links to write
	savedSet  map[linkKey]bool
	users     map[uuid.UUID]*User // nil: none
	emails    map[string]*User    // nil: none
	newUsers  []*User
	members   map[uuid.UUID]*memberEntry
	memberSeq []uuid.UUID // memberships written
	written   map[uuid.UUID]bool
	events    []*audit.Event
}

func newBatchStore(s *Server, tx bun.Tx) *batchStore {
	return &batchStore{
		direct:   txStore{s: s, tx: tx},
		links:    map[linkKey]*integrationLink{},
		savedSet: map[linkKey]bool{},
		users:    map[uuid.UUID]*User{},
		emails:   map[string]*User{},
		members:  map[uuid.UUID]*memberEntry{},
		written:  map[uuid.UUID]bool{},
	}
}

// prefetch names what the events of a batch will read: the links and the
// users by email. Providers add to it (integrationProvider.prefetch).
type prefetch struct {
	links  []linkKey
	emails []string
}

// load reads what f names with three queries: links, then the users they
// point to and the users of f's emails, then those users' memberships.
func (b *batchStore) load(ctx context.Context, f *prefetch) error {
	tx := b.direct.tx
	if err := b.loadLinks(ctx, f.links); err != nil {
		return err
	}
	var ids []uuid.UUID
	for _, l := range b.links {
		if l == nil || l.Kind != "user" || l.InternalID == "" {
			continue
		}
		if id, err := uuid.Parse(l.InternalID); err == nil {
			ids = append(ids, id)
			b.users[id] = nil
		}
	}
	for _, e := range f.emails {
		b.emails[e] = nil
	}
	if len(ids) == 0 && len(f.emails) == 0 {
		return nil
	}
	var us []*User
	q := tx.NewSelect().Model(&us)
	switch {
	case len(ids) == 0:
		q = q.Where("email IN (?)", bun.In(dedupe(f.emails)))
	case len(f.emails) == 0:
		q = q.Where("id IN (?)", bun.In(dedupe(ids)))
	default:
		q = q.Where("id IN (?) OR email IN (?)", bun.In(dedupe(ids)), bun.In(dedupe(f.emails)))
	}
	if err := q.Scan(ctx); err != nil {
		return err
	}
	if len(us) == 0 {
		return nil
	}
	ids = ids[:0]
	for _, u := range us {
		b.users[u.ID], b.emails[u.Email] = u, u
		ids = append(ids, u.ID)
		b.members[u.ID] = &memberEntry{}
	}
	var ms []*Member
	if err := tx.NewSelect().Model(&ms).Where("member.user_id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return err
	}
	for _, m := range ms {
		m.User = b.users[m.UserID]
		b.members[m.UserID] = &memberEntry{m: m, stored: true}
	}
	return nil
}

// loadLinks reads the links keys name; those it does not find are known
// absent.
//
// On Postgres the links are locked (FOR UPDATE), in key order, as loadLink
// locks one: a link holds the version its object is at, and an event
// applies only when it is newer, so that two transactions applying events
// of one object must take turns. Without the lock both would read the
// same version, and the older event, committing last, would overwrite the
// newer one's effect. The second now waits for the first and reads the
// version it wrote. (SQLite's write transactions take turns anyway.)
//
// On Postgres each key is looked up by the whole primary key in a lateral
// subquery, which the planner cannot merge into a join: with an IN list of
// external ids it may scan every link of the connection instead, as it
// does when its statistics are older than a fast-growing table.
func (b *batchStore) loadLinks(ctx context.Context, keys []linkKey) error {
	if len(keys) == 0 {
		return nil
	}
	tx := b.direct.tx
	type group struct {
		conn uuid.UUID
		kind string
	}
	groups := map[group][]string{}
	var order []group
	for _, k := range keys {
		if _, ok := b.links[k]; ok {
			continue
		}
		b.links[k] = nil
		g := group{k.conn, k.kind}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], k.externalID)
	}
	slices.SortFunc(order, func(x, y group) int {
		return cmp.Or(bytes.Compare(x.conn[:], y.conn[:]), strings.Compare(x.kind, y.kind))
	})
	tenant, ok := tenancy.IDFromContext(ctx)
	if !ok {
		return tenancy.ErrNoTenant
	}
	for _, g := range order {
		var ls []*integrationLink
		var err error
		if tx.Dialect().Name() == dialect.PG {
			exts := groups[g]
			slices.Sort(exts)
			err = tx.NewRaw(`SELECT l.* FROM unnest(?::text[]) WITH ORDINALITY AS k(external_id, n)
CROSS JOIN LATERAL (SELECT * FROM integration_links AS il
	WHERE il.tenant_id = ? AND il.connection_id = ? AND il.kind = ? AND il.external_id = k.external_id
	LIMIT 1 FOR UPDATE) AS l ORDER BY k.n`,
				pgdialect.Array(exts), tenant, g.conn, g.kind).Scan(ctx, &ls)
		} else {
			err = tx.NewSelect().Model(&ls).Where("il.connection_id = ?", g.conn).Where("il.kind = ?", g.kind).
				Where("il.external_id IN (?)", bun.In(groups[g])).Scan(ctx)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		for _, l := range ls {
			b.links[linkKey{l.ConnectionID, l.Kind, l.ExternalID}] = l
		}
	}
	return nil
}

// dedupe returns the distinct values of vs.
func dedupe[T comparable](vs []T) []T {
	seen := make(map[T]bool, len(vs))
	out := vs[:0:0]
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func (b *batchStore) link(ctx context.Context, conn uuid.UUID, kind, externalID string) (*integrationLink, error) {
	k := linkKey{conn, kind, externalID}
	if l, ok := b.links[k]; ok {
		return l, nil
	}
	l, err := b.direct.link(ctx, conn, kind, externalID)
	if err == nil {
		b.links[k] = l
	}
	return l, err
}

func (b *batchStore) saveLink(_ context.Context, l *integrationLink) error {
	k := linkKey{l.ConnectionID, l.Kind, l.ExternalID}
	if !b.savedSet[k] {
		b.savedSet[k] = true
		b.saved = append(b.saved, k)
	}
	b.links[k] = l
	return nil
}

func (b *batchStore) userByID(ctx context.Context, id uuid.UUID) (*User, error) {
	if u, ok := b.users[id]; ok {
		return u, nil
	}
	u, err := b.direct.userByID(ctx, id)
	if err == nil {
		b.users[id] = u
		b.keepUser(u)
	}
	return u, err
}

func (b *batchStore) userByEmail(ctx context.Context, email string) (*User, error) {
	if u, ok := b.emails[email]; ok {
		return u, nil
	}
	u, err := b.direct.userByEmail(ctx, email)
	if err == nil {
		b.emails[email] = u
		b.keepUser(u)
	}
	return u, err
}

// keepUser remembers a user read from the database under both keys.
func (b *batchStore) keepUser(u *User) {
	if u != nil {
		b.users[u.ID], b.emails[u.Email] = u, u
	}
}

func (b *batchStore) insertUser(_ context.Context, u *User) error {
	b.users[u.ID], b.emails[u.Email] = u, u
	b.newUsers = append(b.newUsers, u)
	return nil
}

func (b *batchStore) member(ctx context.Context, userID uuid.UUID) (*Member, error) {
	e, ok := b.members[userID]
	if !ok {
		m, err := b.direct.member(ctx, userID)
		switch {
		case errors.Is(err, ErrNotFound):
			e = &memberEntry{}
		case err != nil:
			return nil, err
		default:
			e = &memberEntry{m: m, stored: true}
		}
		b.members[userID] = e
	}
	if e.m == nil {
		return nil, ErrNotFound
	}
	return e.m, nil
}

// entry returns the entry of a membership about to be written, marking
// it for flush.
func (b *batchStore) entry(userID uuid.UUID) *memberEntry {
	e, ok := b.members[userID]
	if !ok {
		e = &memberEntry{}
		b.members[userID] = e
	}
	if !b.written[userID] {
		b.written[userID] = true
		b.memberSeq = append(b.memberSeq, userID)
	}
	return e
}

func (b *batchStore) insertMember(ctx context.Context, m *Member) error {
	// Stamp the tenant now, as the insert would, for the audit event
	// recorded before flush.
	id, ok := tenancy.IDFromContext(ctx)
	if !ok {
		return tenancy.ErrNoTenant
	}
	if m.TenantID == uuid.Nil {
		m.TenantID = id
	}
	e := b.entry(m.UserID)
	if e.stored && !e.removed {
		// As the database would, refuse a second membership.
		return errors.New("server: membership exists")
	}
	e.m = m
	return nil
}

func (b *batchStore) updateMember(_ context.Context, m *Member) error {
	e := b.entry(m.UserID)
	e.m = m
	if e.stored && !e.removed {
		e.changed = true
	}
	return nil
}

func (b *batchStore) deleteMember(_ context.Context, m *Member) error {
	e := b.entry(m.UserID)
	e.m = nil
	if e.stored {
		e.removed, e.changed = true, false
	}
	return nil
}

// record keeps ev for flush, with the actor of ctx, which flush's context
// does not carry.
func (b *batchStore) record(ctx context.Context, ev *audit.Event) error {
	if ev.Actor.IsZero() {
		if a, ok := audit.ActorFromContext(ctx); ok {
			ev.Actor = a
		} else {
			ev.Actor = systemActor
		}
	}
	b.events = append(b.events, ev)
	return nil
}

// flush writes what the batch changed: removed memberships, new users, new
// memberships, changed memberships, links and audit events, a statement
// each (changed memberships, rare, one each).
func (b *batchStore) flush(ctx context.Context) error {
	tx := b.direct.tx
	// Rows are written in key order, so that two jobs writing the same
	// keys wait for each other instead of deadlocking.
	slices.SortFunc(b.memberSeq, func(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) })
	slices.SortFunc(b.newUsers, func(x, y *User) int { return strings.Compare(x.Email, y.Email) })
	slices.SortFunc(b.saved, func(x, y linkKey) int {
		return cmp.Or(bytes.Compare(x.conn[:], y.conn[:]), strings.Compare(x.kind, y.kind), strings.Compare(x.externalID, y.externalID))
	})
	var removed []uuid.UUID
	var added []*Member
	var changed []*Member
	for _, id := range b.memberSeq {
		e := b.members[id]
		if e.removed {
			removed = append(removed, id)
		}
		switch {
		case e.m != nil && (!e.stored || e.removed):
			added = append(added, e.m)
		case e.m != nil && e.changed:
			changed = append(changed, e.m)
		}
	}
	if len(removed) > 0 {
		if _, err := tx.NewDelete().Model((*Member)(nil)).Where("user_id IN (?)", bun.In(removed)).Exec(ctx); err != nil {
			return err
		}
	}
	if len(b.newUsers) > 0 {
		if _, err := tx.NewInsert().Model(&b.newUsers).Exec(ctx); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		if _, err := tx.NewInsert().Model(&added).Exec(ctx); err != nil {
			return err
		}
	}
	for _, m := range changed {
		if err := b.direct.updateMember(ctx, m); err != nil {
			return err
		}
	}
	if len(b.saved) > 0 {
		ls := make([]*integrationLink, len(b.saved))
		for i, k := range b.saved {
			ls[i] = b.links[k]
		}
		if _, err := tx.NewInsert().Model(&ls).Apply(upsertLink).Exec(ctx); err != nil {
			return err
		}
	}
	s := b.direct.s
	if s.recorder == nil || len(b.events) == 0 {
		return nil
	}
	if err := audit.RecordAll(ctx, s.recorder, tx, b.events); err != nil {
		return fmt.Errorf("server: audit: %w", err)
	}
	return nil
}
