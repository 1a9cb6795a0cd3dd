package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/internal/problem"
	"github.com/saaskit/saaskit/tenancy"
	"github.com/saaskit/saaskit/webhooks"
)

// webhookState is the server's state for webhooks and their jobs.
type webhookState struct {
	// driver is the River driver of both clients; closeDriver releases
	// its listener pool.
	driver      riverdriver.Driver[*sql.Tx]
	closeDriver func()
	// jobs inserts jobs (and works none).
	jobs *river.Client[*sql.Tx]
	mu   sync.Mutex
	// worker works jobs while started.
	worker *river.Client[*sql.Tx]
	// stopPrune ends the workers' pruning of old events.
	stopPrune context.CancelFunc
	// conns caches the connections the receivers read.
	conns connCache
	// hook runs in each processing attempt (Options.ProcessHook).
	hook func(ctx context.Context, ev *WebhookEvent, attempt int) error
}

// setupIntegrations builds the job client and mounts the webhook receivers:
// POST /api/integrations/webhooks/{provider}/{connection_id}/ for one event
// and .../batch/ for many. The connection id in the URL names the
// connection whose secrets verify the request; its tenant becomes the
// event's only once the signature has been verified.
func (s *Server) setupIntegrations(ctx context.Context, mux *http.ServeMux) error {
	drv, closeDriver, err := s.jobDriver(ctx)
	if err != nil {
		return err
	}
	s.integ = &webhookState{driver: drv, closeDriver: closeDriver}
	if s.integ.jobs, err = s.newJobClient(false); err != nil {
		return err
	}
	sink := &webhookSink{s: s}
	for _, name := range providerNames() {
		resolve := s.resolveConnection(name)
		base := "/api/integrations/webhooks/" + name + "/{connection}/"
		mux.Handle(base, &webhooks.Receiver{Provider: name, Resolve: resolve, Sink: sink, Logger: s.log, Now: s.now,
			OnResult: s.webhookResult, OnReject: s.webhookRejected})
		mux.Handle(base+"batch/", &webhooks.BatchReceiver{Provider: name, Resolve: resolve, Sink: sink, Logger: s.log, Now: s.now,
			OnResult: s.webhookResult, OnReject: s.webhookRejected})
	}
	mux.HandleFunc("/api/integrations/webhooks/", func(w http.ResponseWriter, r *http.Request) {
		problem.Error(w, http.StatusNotFound, "unknown webhook provider or URL: webhooks are received at /api/integrations/webhooks/{provider}/{connection_id}/")
	})
	return nil
}

type connKey struct{}

// connectionFromContext returns the connection that Resolve put in ctx.
func connectionFromContext(ctx context.Context) (*IntegrationConnection, bool) {
	c, ok := ctx.Value(connKey{}).(*IntegrationConnection)
	return c, ok
}

// resolveConnection returns the Resolve hook of a provider's receivers: it
// loads the connection named by the URL and returns its verifier, and the
// context carrying the connection and its tenant.
func (s *Server) resolveConnection(provider string) func(r *http.Request) (webhooks.Verifier, context.Context, error) {
	return func(r *http.Request) (webhooks.Verifier, context.Context, error) {
		ctx := r.Context()
		id, err := uuid.Parse(r.PathValue("connection"))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: connection id is not a uuid", webhooks.ErrUnknownSource)
		}
		conn, ok := s.integ.conns.get(provider, id, s.now())
		if !ok {
			conn = new(IntegrationConnection)
			err = s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
				return db.NewSelect().Model(conn).Where("ic.id = ?", id).Where("ic.provider = ?", provider).Scan(ctx)
			})
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil, fmt.Errorf("%w: no %s connection %s", webhooks.ErrUnknownSource, provider, id)
			}
			if err != nil {
				return nil, nil, err
			}
			s.integ.conns.put(conn, s.now())
		}
		t, err := s.lookup.LookupTenant(ctx, conn.TenantID.String())
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			return nil, nil, fmt.Errorf("%w: tenant of connection %s", webhooks.ErrUnknownSource, id)
		}
		if err != nil {
			return nil, nil, err
		}
		ctx = context.WithValue(tenancy.WithTenant(ctx, t), connKey{}, conn)
		return webhooks.StandardWebhooks{Secrets: conn.secretList(), Now: s.now}, ctx, nil
	}
}

// webhookSink stores verified events in webhook_events and inserts each new
// event's job in the same transaction, so that an event answered 202 is
// processed even if the process dies right after. The idempotency key is
// (connection, provider, event id): two tenants' accounts may reuse event
// ids, and a connection belongs to one provider.
//
// Concurrent single events of one tenant are committed together (group
// commit): the first request becomes the leader and commits every event
// that arrived meanwhile in one transaction, one multi-row insert and one
// job insert; no request is answered before the commit that stores its
// event. The leader takes its group once the transaction has begun, so the
// group holds what arrived during the begin's round trips.
type webhookSink struct {
	s *Server

	mu      sync.Mutex
	pending map[uuid.UUID][]*pendingEvent // by tenant
	running map[uuid.UUID]int             // leaders committing for the tenant
}

// leaders is how many group commits of one tenant run at once: one on
// SQLite, whose writers take turns anyway, and two on Postgres, so that
// one transaction begins while the other commits (measured: 3,400
// events/s with one, 5,300 with two, 3,200 with four, whose groups are
// too small for their round trips).
func (k *webhookSink) leaders() int {
	if k.s.db.Dialect().Name() == dialect.PG {
		return 2
	}
	return 1
}

// maxGroup bounds the events of one group commit.
const maxGroup = 500

type pendingEvent struct {
	we   *WebhookEvent
	dup  bool
	err  error
	done chan struct{}
}

var _ webhooks.BatchSink = (*webhookSink)(nil)

func (k *webhookSink) newEvent(conn *IntegrationConnection, ev *webhooks.Event) *WebhookEvent {
	now := k.s.now()
	we := &WebhookEvent{
		ID: uuid.Must(uuid.NewV7()), ConnectionID: conn.ID, Provider: ev.Provider, EventID: ev.ID, Type: ev.Type,
		Payload: string(ev.Payload), Status: EventReceived, ReceivedAt: now, UpdatedAt: now,
	}
	we.TenantID = conn.TenantID
	if !ev.Timestamp.IsZero() {
		t := ev.Timestamp.UTC().Truncate(time.Microsecond)
		we.OccurredAt = &t
	}
	return we
}

// store inserts the events that are new, and their jobs, in one
// transaction of ctx's tenant; it returns the ids of the new rows.
func (k *webhookSink) store(ctx context.Context, wes []*WebhookEvent) (map[uuid.UUID]bool, error) {
	_, stored, err := k.storeTaken(ctx, func() []*WebhookEvent { return wes })
	return stored, err
}

// errNothingTaken ends a transaction that found no events to store.
var errNothingTaken = errors.New("server: no events to store")

// storeTaken begins a transaction of ctx's tenant, then calls take for
// the events to store (so that events arriving while the transaction
// begins are in it), and inserts those that are new with their jobs. It
// returns the events taken and the ids of the new rows.
func (k *webhookSink) storeTaken(ctx context.Context, take func() []*WebhookEvent) ([]*WebhookEvent, map[uuid.UUID]bool, error) {
	var wes []*WebhookEvent
	stored := map[uuid.UUID]bool{}
	err := k.s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if wes == nil {
			wes = take()
		}
		if len(wes) == 0 {
			return errNothingTaken
		}
		clear(stored)
		// One multi-row insert; RETURNING names the rows that were new
		// (an id already stored, or twice in wes, is skipped).
		ids, err := insertEvents(ctx, tx, wes)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			stored[id] = true
		}
		// One job for the new events (a few when more than a job takes),
		// in the order received.
		newIDs := make([]uuid.UUID, 0, len(ids))
		for _, we := range wes {
			if stored[we.ID] {
				newIDs = append(newIDs, we.ID)
			}
		}
		if _, err := k.s.integ.jobs.InsertManyFastTx(ctx, tx.Tx, batchJobs(wes[0].TenantID, newIDs)); err != nil {
			return fmt.Errorf("server: enqueue events: %w", err)
		}
		return nil
	})
	if errors.Is(err, errNothingTaken) {
		err = nil
	}
	return wes, stored, err
}

// Accept implements webhooks.Sink.
func (k *webhookSink) Accept(ctx context.Context, ev *webhooks.Event) (bool, error) {
	conn, ok := connectionFromContext(ctx)
	if !ok {
		return false, errors.New("server: webhook sink: no connection in context")
	}
	p := &pendingEvent{we: k.newEvent(conn, ev), done: make(chan struct{})}
	tenant := conn.TenantID
	k.mu.Lock()
	if k.pending == nil {
		k.pending, k.running = map[uuid.UUID][]*pendingEvent{}, map[uuid.UUID]int{}
	}
	k.pending[tenant] = append(k.pending[tenant], p)
	if k.running[tenant] >= k.leaders() {
		k.mu.Unlock()
		<-p.done // the leader commits it; its context does not cancel that
		return p.dup, p.err
	}
	k.running[tenant]++
	k.mu.Unlock()
	// Leader: commit groups until none is pending. A group is taken once
	// its transaction has begun, so that it holds what arrived meanwhile.
	// The commit must not fail because this request's client went away.
	cctx := context.WithoutCancel(ctx)
	for {
		k.mu.Lock()
		if len(k.pending[tenant]) == 0 {
			delete(k.pending, tenant)
			if k.running[tenant]--; k.running[tenant] == 0 {
				delete(k.running, tenant)
			}
			k.mu.Unlock()
			break
		}
		k.mu.Unlock()
		var group []*pendingEvent
		take := func() []*WebhookEvent {
			k.mu.Lock()
			group = k.pending[tenant]
			if len(group) > maxGroup {
				group, k.pending[tenant] = group[:maxGroup], group[maxGroup:]
			} else {
				delete(k.pending, tenant)
			}
			k.mu.Unlock()
			wes := make([]*WebhookEvent, len(group))
			for i, g := range group {
				wes[i] = g.we
			}
			return wes
		}
		_, stored, err := k.storeTaken(cctx, take)
		if err != nil && group == nil {
			// The transaction failed before taking a group: the events
			// pending now get its error (not stored: the sender retries).
			take()
			for _, g := range group {
				g.err = err
				close(g.done)
			}
			continue
		}
		if err != nil && isForeignKeyViolation(err) {
			// A connection was deleted after a request resolved it (here
			// or on another replica): store the group's events one by one,
			// so that only the gone connection's events are refused.
			k.storeEach(cctx, group)
			continue
		}
		for _, g := range group {
			g.dup, g.err = err == nil && !stored[g.we.ID], err
			close(g.done)
		}
	}
	// This request's own event may be in another leader's group, still
	// committing: answer only once it is done.
	<-p.done
	return p.dup, p.err
}

// AcceptBatch implements webhooks.BatchSink: the batch is one transaction,
// one multi-row insert and one job insert.
func (k *webhookSink) AcceptBatch(ctx context.Context, evs []*webhooks.Event) ([]webhooks.BatchResult, error) {
	conn, ok := connectionFromContext(ctx)
	if !ok {
		return nil, errors.New("server: webhook sink: no connection in context")
	}
	wes := make([]*WebhookEvent, len(evs))
	for i, ev := range evs {
		wes[i] = k.newEvent(conn, ev)
	}
	stored, err := k.store(ctx, wes)
	if err != nil {
		return nil, k.goneConnection(conn.ID, err)
	}
	res := make([]webhooks.BatchResult, len(evs))
	for i, we := range wes {
		res[i].Duplicate = !stored[we.ID]
	}
	return res, nil
}

// storeEach stores each event of group in a transaction of its own and
// answers it.
func (k *webhookSink) storeEach(ctx context.Context, group []*pendingEvent) {
	for _, g := range group {
		stored, err := k.store(ctx, []*WebhookEvent{g.we})
		g.dup, g.err = err == nil && !stored[g.we.ID], k.goneConnection(g.we.ConnectionID, err)
		close(g.done)
	}
}

// goneConnection turns the foreign-key failure of storing an event of a
// connection deleted meanwhile into an unknown source (404), and makes the
// receivers forget the connection. Other errors pass unchanged.
func (k *webhookSink) goneConnection(conn uuid.UUID, err error) error {
	if err == nil || !isForeignKeyViolation(err) {
		return err
	}
	k.s.integ.conns.forget(conn)
	return fmt.Errorf("%w: connection %s was deleted", webhooks.ErrUnknownSource, conn)
}

// isForeignKeyViolation reports whether err is a foreign-key failure of
// SQLite or Postgres.
func isForeignKeyViolation(err error) bool {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) && pg.SQLState() == "23503" {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "FOREIGN KEY constraint failed") || strings.Contains(msg, "SQLSTATE 23503")
}
