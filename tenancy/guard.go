package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// ErrUnscoped means a Bun query on a tenant-owned model ran with a tenant in
// the context but without the tenant filter: typically Count, Exists, Rows or
// Exec of a SelectQuery, which Bun runs without model hooks. Apply [Scope].
var ErrUnscoped = errors.New("tenancy: query on a tenant-owned model is not scoped to the tenant")

// Guard is a [bun.QueryHook] that stops queries on tenant tables that run with
// no tenant in the context and without [System] access. Model hooks do not see
// raw SQL (db.NewRaw, db.QueryContext, bare table expressions); the guard does,
// because it reads the final SQL text. Install it once:
//
//	g := tenancy.NewGuard("members", "invitations")
//	db.AddQueryHook(g)
//
// Schema changes (CREATE, ALTER, DROP, COMMENT, GRANT, REVOKE) pass, so that
// migrations run with the guard installed. A stopped query never reaches the database: the guard hands database/sql a
// context that is already done, whose Err wraps both [ErrNoTenant] and
// context.Canceled, and database/sql returns that error.
//
// The guard also stops a Bun model query on a [Scoped] model whose SQL does not
// mention the context's tenant id, with [ErrUnscoped] (again wrapping
// context.Canceled): Bun runs Count, Exists, Rows and Exec of a SelectQuery
// without the BeforeSelect hook.
//
// Tables are matched by name against every identifier in the SQL, quoted or
// not, with or without a schema, case-insensitively; string literals and
// comments are skipped. A column or alias with the name of a guarded table
// therefore also trips the guard: it fails closed. A Guard is safe for
// concurrent use; tables may be added while queries run.
type Guard struct {
	mu     sync.Mutex
	tables atomic.Pointer[map[string]struct{}]
}

var _ bun.QueryHook = (*Guard)(nil)

// NewGuard returns a guard for the given tenant tables.
func NewGuard(tables ...string) *Guard {
	g := &Guard{}
	m := map[string]struct{}{}
	g.tables.Store(&m)
	for _, t := range tables {
		g.Add(t)
	}
	return g
}

// Add registers a tenant table by name (without schema). Packages that own
// tenant tables call it for each of them.
func (g *Guard) Add(table string) {
	table = strings.ToLower(strings.Trim(table, "\"`"))
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		table = strings.Trim(table[i+1:], "\"`")
	}
	if table == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.load()
	if _, ok := old[table]; ok {
		return
	}
	m := make(map[string]struct{}, len(old)+1)
	for k := range old {
		m[k] = struct{}{}
	}
	m[table] = struct{}{}
	g.tables.Store(&m)
}

func (g *Guard) load() map[string]struct{} {
	if p := g.tables.Load(); p != nil {
		return *p
	}
	return nil
}

// Tables returns the guarded tables, sorted.
func (g *Guard) Tables() []string {
	m := g.load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// BeforeQuery stops the query, as the type doc describes, or lets it pass.
func (g *Guard) BeforeQuery(ctx context.Context, event *bun.QueryEvent) context.Context {
	if t, ok := FromContext(ctx); ok {
		if modelScoped(event) && !isRaw(event) && isDML(event) && !strings.Contains(event.Query, t.ID.String()) {
			return stopped(ctx, fmt.Errorf("%w: %s (%w)", ErrUnscoped, event.Operation(), context.Canceled))
		}
		return ctx
	}
	if IsSystem(ctx) || isDDL(event.Query) {
		return ctx
	}
	if modelScoped(event) {
		return stopped(ctx, fmt.Errorf("%w: %s on a tenant-owned model (%w)", ErrNoTenant, event.Operation(), context.Canceled))
	}
	if table, ok := g.match(event.Query); ok {
		return stopped(ctx, fmt.Errorf("%w: query on tenant table %q (%w)", ErrNoTenant, table, context.Canceled))
	}
	return ctx
}

// AfterQuery does nothing.
func (g *Guard) AfterQuery(context.Context, *bun.QueryEvent) {}

// match reports the first guarded table named in query.
func (g *Guard) match(query string) (string, bool) {
	tables := g.load()
	if len(tables) == 0 {
		return "", false
	}
	var found string
	scanIdents(query, func(ident string) bool {
		if _, ok := tables[ident]; ok {
			found = ident
			return false
		}
		if _, ok := tables[strings.ToLower(ident)]; ok {
			found = strings.ToLower(ident)
			return false
		}
		return true
	})
	return found, found != ""
}

func modelScoped(event *bun.QueryEvent) bool {
	tm, ok := event.Model.(interface{ Table() *schema.Table })
	if !ok {
		return false
	}
	table := tm.Table()
	if table == nil {
		return false
	}
	_, ok = table.ZeroIface.(tenantScoped)
	return ok
}

func isRaw(event *bun.QueryEvent) bool {
	_, ok := event.IQuery.(*bun.RawQuery)
	return ok || event.IQuery == nil
}

// isDDL reports whether query is a schema change (CREATE, ALTER, DROP,
// COMMENT, GRANT, REVOKE), which migrations run without a tenant.
func isDDL(query string) bool {
	var kw string
	scanIdents(query, func(s string) bool { kw = s; return false })
	switch strings.ToUpper(kw) {
	case "CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE":
		return true
	}
	return false
}

func isDML(event *bun.QueryEvent) bool {
	switch event.Operation() {
	case "SELECT", "INSERT", "UPDATE", "DELETE":
		return true
	}
	return false
}

// scanIdents calls fn with each identifier of the SQL text q, unquoted, until
// fn returns false. It skips string literals, dollar-quoted strings, comments,
// numbers, and bind parameters.
func scanIdents(q string, fn func(string) bool) {
	n := len(q)
	for i := 0; i < n; {
		c := q[i]
		switch {
		case c == '\'':
			i = skipQuoted(q, i+1, '\'')
		case c == '"' || c == '`':
			end := skipQuoted(q, i+1, c)
			body := q[i+1 : max(i+1, end-1)]
			if strings.IndexByte(body, c) >= 0 {
				body = strings.ReplaceAll(body, string([]byte{c, c}), string(c))
			}
			if body != "" && !fn(body) {
				return
			}
			i = end
		case c == '[':
			end := strings.IndexByte(q[i+1:], ']')
			if end < 0 {
				return
			}
			if body := q[i+1 : i+1+end]; body != "" && !fn(body) {
				return
			}
			i += end + 2
		case c == '-' && i+1 < n && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				return
			}
			i += end + 1
		case c == '/' && i+1 < n && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return
			}
			i += end + 4
		case c == '$':
			// $1 parameter or $tag$...$tag$ dollar quote.
			j := i + 1
			for j < n && isIdentByte(q[j]) {
				j++
			}
			if j < n && q[j] == '$' && (j == i+1 || !isDigit(q[i+1])) {
				tag := q[i : j+1]
				end := strings.Index(q[j+1:], tag)
				if end < 0 {
					return
				}
				i = j + 1 + end + len(tag)
			} else {
				i = j
			}
		case isIdentStart(c):
			j := i + 1
			for j < n && (isIdentByte(q[j]) || q[j] == '$') {
				j++
			}
			if !fn(q[i:j]) {
				return
			}
			i = j
		case isDigit(c):
			j := i + 1
			for j < n && isIdentByte(q[j]) {
				j++
			}
			i = j
		default:
			i++
		}
	}
}

// skipQuoted returns the index after the closing quote of a literal that
// starts at i (after the opening quote); a doubled quote is an escaped one.
func skipQuoted(q string, i int, quote byte) int {
	for i < len(q) {
		if q[i] == quote {
			if i+1 < len(q) && q[i+1] == quote {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentByte(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// stoppedCtx is a done context whose Err is the guard's error.
type stoppedCtx struct {
	context.Context
	err error
}

var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func stopped(parent context.Context, err error) context.Context {
	return stoppedCtx{Context: parent, err: err}
}

func (c stoppedCtx) Done() <-chan struct{}       { return closedDone }
func (c stoppedCtx) Err() error                  { return c.err }
func (c stoppedCtx) Deadline() (time.Time, bool) { return c.Context.Deadline() }
func (c stoppedCtx) Value(key any) any           { return c.Context.Value(key) }
func (c stoppedCtx) String() string              { return "tenancy.stopped" }
