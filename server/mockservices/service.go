package mockservices

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/saaskit/saaskit/internal/problem"
)

// Config configures a mock service. The zero value is a service with no
// faults that sends no webhooks.
type Config struct {
	// Webhook is where changes are posted; an empty URL sends none.
	Webhook Webhook
	// Faults are the failures injected from the start; /admin/faults
	// changes them.
	Faults Faults
	// Seed seeds the random source of faults and ids; zero means seed 1
	// (runs are reproducible unless a seed is given from outside).
	Seed uint64
	// Account is the account id the service reports in /v1/health; empty
	// means "acct_1".
	Account string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient sends the webhooks; nil means a client with a 10 second
	// timeout.
	HTTPClient *http.Client
	// Logger receives a line per webhook; nil discards.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Account == "" {
		c.Account = "acct_1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// base is what both services share: faults, the webhook sender, the clock
// and the routes around the API.
type base struct {
	name    string
	account string
	faults  *faultState
	sender  *Sender
	now     func() time.Time
	api     *http.ServeMux

	mu   sync.Mutex
	last time.Time // the newest updated_at handed out
	seq  int
}

func newBase(name string, cfg Config) (*base, error) {
	cfg.defaults()
	faults := newFaultState(cfg.Faults, cfg.Seed)
	sender, err := newSender(&cfg, faults)
	if err != nil {
		return nil, err
	}
	b := &base{name: name, account: cfg.Account, faults: faults, sender: sender, now: cfg.Now, api: http.NewServeMux()}
	b.api.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": b.name, "account": b.account})
	})
	return b, nil
}

// stamp returns the time of a change: now, or just after the previous
// change, so that versions strictly increase. It holds b.mu.
func (b *base) stamp() time.Time {
	t := b.now().UTC().Truncate(time.Microsecond)
	if !t.After(b.last) {
		t = b.last.Add(time.Microsecond)
	}
	b.last = t
	return t
}

// nextID returns prefix followed by a zero-padded sequence number, so that
// ids sort in creation order. It holds b.mu.
func (b *base) nextID(prefix string) string {
	b.seq++
	return prefix + "_" + leftPad(strconv.Itoa(b.seq), 6)
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// ServeHTTP routes /admin/faults, then injects faults, then serves the API.
func (b *base) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/admin/faults" {
		b.faults.serveAdmin(w, r)
		return
	}
	if b.faults.inject(w, r, r.URL.Path == "/v1/health") {
		return
	}
	b.api.ServeHTTP(w, r)
}

// Faults returns the faults in force.
func (b *base) Faults() Faults { return b.faults.get() }

// SetFaults replaces the faults in force.
func (b *base) SetFaults(f Faults) { b.faults.set(f) }

// Sender returns the service's webhook sender.
func (b *base) Sender() *Sender { return b.sender }

// page is one page of a list.
type page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// paginate returns the items of ids (sorted) after cursor, at most limit
// (from the query: 1 to 100, default 50).
func paginate[T any](r *http.Request, items map[string]*T) (page[T], bool) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return page[T]{}, false
		}
		limit = n
	}
	cursor := r.URL.Query().Get("cursor")
	ids := make([]string, 0, len(items))
	for id := range items {
		if id > cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	p := page[T]{Data: []T{}}
	for i, id := range ids {
		if i == limit {
			p.NextCursor = ids[i-1]
			break
		}
		p.Data = append(p.Data, *items[id])
	}
	return p, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// writeError answers an RFC 9457 problem.
func writeError(w http.ResponseWriter, status int, detail string) {
	problem.Error(w, status, detail)
}

func sortByID[T any](items []T, id func(T) string) []T {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return items
}
