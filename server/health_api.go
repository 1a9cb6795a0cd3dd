package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/authn"
	resilient "github.com/saaskit/saaskit/integrations"
	"github.com/saaskit/saaskit/tenancy"
)

// outbound is the server's state for calls to the providers' APIs: one
// resilient client whose breakers are keyed by provider, the health it
// observes, and the last reconciliation of each connection.
type outbound struct {
	client *resilient.Client
	health *healthTracker
	urls   map[string]string
	// replica names this process in the stored health snapshots.
	replica string

	mu      sync.Mutex
	reports map[uuid.UUID]*ReconcileReport
}

// integrationURLs parses SAASKIT_INTEGRATION_URLS: provider=url,...
func (c *Config) integrationURLs() (map[string]string, error) {
	out := map[string]string{}
	for _, item := range splitList(c.IntegrationURLs) {
		name, raw, ok := strings.Cut(item, "=")
		name, raw = strings.TrimSpace(name), strings.TrimRight(strings.TrimSpace(raw), "/")
		if _, known := providers[name]; !ok || !known {
			return nil, fmt.Errorf("%w: SAASKIT_INTEGRATION_URLS: %q is not provider=url with a known provider", ErrConfig, item)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: SAASKIT_INTEGRATION_URLS: %q is not an http(s) URL", ErrConfig, raw)
		}
		out[name] = raw
	}
	if c.IntegrationCheckInterval < 0 || c.ReconcileInterval < 0 {
		return nil, fmt.Errorf("%w: integration check and reconcile intervals must not be negative", ErrConfig)
	}
	return out, nil
}

// setupOutbound builds the outbound client and its health tracker and
// registers the health and reconciliation operations.
func (s *Server) setupOutbound(cfg resilient.Config) error {
	urls, err := s.cfg.integrationURLs()
	if err != nil {
		return err
	}
	h := newHealthTracker(s.registry, s.now, s.log)
	if cfg.Observer != nil {
		cfg.Observer = multiObserver{h, cfg.Observer}
	} else {
		cfg.Observer = h
	}
	s.out = &outbound{client: resilient.New(cfg), health: h, urls: urls, replica: replicaName(),
		reports: map[uuid.UUID]*ReconcileReport{}}
	s.registerHealth(s.api)
	return nil
}

// replicaName names this process: its host name and a random suffix, as
// several processes may share a host.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	return host + "-" + uuid.NewString()[:8]
}

type multiObserver []resilient.Observer

func (m multiObserver) OnAttempt(i resilient.AttemptInfo) {
	for _, o := range m {
		o.OnAttempt(i)
	}
}

func (m multiObserver) OnStateChange(key string, from, to resilient.State) {
	for _, o := range m {
		o.OnStateChange(key, from, to)
	}
}

// providerContext returns ctx with the provider as the client's key, so
// that each provider has one breaker whatever its host.
func providerContext(ctx context.Context, provider string) context.Context {
	return resilient.WithKey(ctx, provider)
}

// CheckIntegrations calls the health endpoint (GET /v1/health) of every
// provider that has a base URL, through the outbound client, and writes
// the health changes it caused to the history and the checked providers'
// snapshots to the table every replica reads. It returns the first
// error of a check; every provider is checked. A periodic job runs it
// every Config.IntegrationCheckInterval (see periodic.go).
func (s *Server) CheckIntegrations(ctx context.Context) error {
	var first error
	for _, name := range providerNames() {
		base, ok := s.out.urls[name]
		if !ok {
			continue
		}
		s.out.health.markDirty(name)
		err := s.out.client.GetJSON(providerContext(ctx, name), base+"/v1/health", nil)
		if err != nil && first == nil {
			first = fmt.Errorf("server: check %s: %w", name, err)
		}
	}
	if err := s.flushHealthHistory(ctx); err != nil && first == nil {
		first = err
	}
	return first
}

// flushHealthHistory writes the queued health changes to the history,
// and the snapshots of the providers whose state changed or that were
// checked to integration_health. A stored snapshot is replaced only by
// one observed later, whichever replica writes.
func (s *Server) flushHealthHistory(ctx context.Context) error {
	if err := s.storeHealthSnapshots(ctx); err != nil {
		return err
	}
	changes := s.out.health.takePending()
	if len(changes) == 0 {
		return nil
	}
	rows := make([]healthHistory, len(changes))
	for i, c := range changes {
		rows[i] = healthHistory{ID: uuid.Must(uuid.NewV7()), Provider: c.provider, FromState: c.from, ToState: c.to,
			Reason: c.reason, ErrorRate: c.errorRate, P95Ms: ms(c.p95), At: c.at.UTC().Truncate(time.Microsecond)}
	}
	if _, err := s.db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return fmt.Errorf("server: integration health history: %w", err)
	}
	return nil
}

func (s *Server) storeHealthSnapshots(ctx context.Context) error {
	snaps := s.out.health.takeDirty()
	for i, h := range snaps {
		r := snapshotRow(h, s.out.replica)
		_, err := s.db.NewInsert().Model(&r).
			On("CONFLICT (provider) DO UPDATE").
			Set("state = EXCLUDED.state, since = EXCLUDED.since, breaker = EXCLUDED.breaker, error_rate = EXCLUDED.error_rate").
			Set("attempts = EXCLUDED.attempts, p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms").
			Set("last_success = EXCLUDED.last_success, last_failure = EXCLUDED.last_failure, last_error = EXCLUDED.last_error").
			Set("consecutive_failures = EXCLUDED.consecutive_failures, updated_at = EXCLUDED.updated_at, replica = EXCLUDED.replica").
			Where("ih.updated_at <= EXCLUDED.updated_at").
			Exec(ctx)
		if err != nil {
			for _, rest := range snaps[i:] {
				s.out.health.markDirty(rest.Provider) // stored at the next flush
			}
			return fmt.Errorf("server: integration health snapshot: %w", err)
		}
	}
	return nil
}

// providerHealth returns a function giving each provider's health: the
// fresher (by observation time) of this replica's and the stored one, so
// that every replica shows what the replica running the checks saw.
func (s *Server) providerHealth(ctx context.Context) (func(provider string) ProviderHealth, error) {
	var rows []healthSnapshot
	if err := s.db.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return nil, fmt.Errorf("server: integration health snapshots: %w", err)
	}
	stored := make(map[string]healthSnapshot, len(rows))
	for _, r := range rows {
		stored[r.Provider] = r
	}
	return func(provider string) ProviderHealth {
		local := s.out.health.snapshot(provider)
		if local.ObservedAt != nil {
			local.ObservedBy = s.out.replica
		}
		r, ok := stored[provider]
		if !ok || (local.ObservedAt != nil && local.ObservedAt.UnixNano() >= r.UpdatedAt) {
			return local
		}
		return r.view()
	}, nil
}

// ConnectionHealth is a tenant's connection with the health of its
// provider and its last reconciliation.
type ConnectionHealth struct {
	ConnectionID    uuid.UUID        `json:"connection_id"`
	Provider        string           `json:"provider"`
	ExternalAccount string           `json:"external_account"`
	Health          ProviderHealth   `json:"health"`
	LastReconcile   *ReconcileReport `json:"last_reconcile"`
}

// HealthChangeView is a recorded change of a provider's health.
type HealthChangeView struct {
	Provider  string    `json:"provider"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	ErrorRate float64   `json:"error_rate"`
	P95Ms     float64   `json:"p95_ms"`
	At        time.Time `json:"at"`
}

// IntegrationHealthView answers GET /api/integrations/health/: every
// provider and the recent changes for a superadmin, the tenant's
// connections for a tenant admin.
type IntegrationHealthView struct {
	Providers   []ProviderHealth   `json:"providers,omitempty"`
	History     []HealthChangeView `json:"history,omitempty" doc:"The last 50 health changes, newest first (superadmins)."`
	Connections []ConnectionHealth `json:"connections,omitempty"`
}

func (s *Server) registerHealth(api huma.API) {
	tags := []string{"integrations"}
	register(s, api, huma.Operation{
		OperationID: "get-integration-health", Method: http.MethodGet, Path: "/api/integrations/health/", Tags: tags,
		Summary:  "Health of the providers (superadmin: all, with history) or of the current tenant's connections (admin)",
		Security: bearerAuth,
	}, s.handleIntegrationHealth)
	register(s, api, huma.Operation{
		OperationID: "reconcile-integration-connection", Method: http.MethodPost, Path: "/api/integrations/connections/{id}/reconcile/",
		Tags: tags, Summary: "Pull the provider's users or subscription and repair what missed webhooks left out (admin)",
		Security: bearerAuth, Errors: []int{http.StatusConflict, http.StatusBadGateway, http.StatusServiceUnavailable},
	}, s.handleReconcile)
}

func (s *Server) handleIntegrationHealth(ctx context.Context, _ *struct{}) (*struct{ Body IntegrationHealthView }, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	out := &struct{ Body IntegrationHealthView }{}
	if p.Superadmin && authn.AuthorizeSuperadmin(ctx) == nil {
		if err := s.flushHealthHistory(ctx); err != nil {
			return nil, err
		}
		health, err := s.providerHealth(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range providerNames() {
			out.Body.Providers = append(out.Body.Providers, health(name))
		}
		var rows []healthHistory
		if err := s.db.NewSelect().Model(&rows).OrderExpr("at DESC, id DESC").Limit(50).Scan(ctx); err != nil {
			return nil, err
		}
		out.Body.History = make([]HealthChangeView, 0, len(rows))
		for _, r := range rows {
			out.Body.History = append(out.Body.History, HealthChangeView{Provider: r.Provider, From: r.FromState, To: r.ToState,
				Reason: r.Reason, ErrorRate: r.ErrorRate, P95Ms: r.P95Ms, At: r.At})
		}
		if p.TenantID == uuid.Nil {
			return out, nil
		}
	}
	ctx, err = s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var conns []*IntegrationConnection
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(&conns).Apply(tenancy.Scope(ctx)).OrderExpr("ic.id").Limit(1000).Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	health, err := s.providerHealth(ctx)
	if err != nil {
		return nil, err
	}
	out.Body.Connections = make([]ConnectionHealth, 0, len(conns))
	for _, c := range conns {
		out.Body.Connections = append(out.Body.Connections, ConnectionHealth{ConnectionID: c.ID, Provider: c.Provider,
			ExternalAccount: c.ExternalAccount, Health: health(c.Provider), LastReconcile: s.out.lastReport(c.ID)})
	}
	return out, nil
}
