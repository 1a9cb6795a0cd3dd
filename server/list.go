package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ErrBadCursor is returned for a cursor that does not decode or belongs to
// another ordering.
var ErrBadCursor = errors.New("server: bad cursor")

// Page is the shape of every list response.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor" doc:"Opaque cursor of the next page; null on the last page."`
}

// ListParams are the pagination and common filter parameters of every list.
type ListParams struct {
	Limit         int       `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Items per page."`
	Cursor        string    `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page."`
	CreatedAfter  time.Time `query:"created_after" doc:"Only items created after this time (RFC 3339)."`
	CreatedBefore time.Time `query:"created_before" doc:"Only items created before this time (RFC 3339)."`
	Search        string    `query:"search" maxLength:"100" doc:"Case-insensitive text search."`
}

// cursor is the decoded keyset position: the ordering it belongs to, the
// last item's sort value and its id.
type cursor struct {
	Ordering string    `json:"o"`
	Value    string    `json:"v,omitempty"`
	ID       uuid.UUID `json:"id"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, ordering string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.ID == uuid.Nil {
		return nil, fmt.Errorf("%w: malformed", ErrBadCursor)
	}
	if c.Ordering != ordering {
		return nil, fmt.Errorf("%w: it belongs to ordering %q, not %q", ErrBadCursor, c.Ordering, ordering)
	}
	return &c, nil
}

// sortKey is one allow-listed ordering.
type sortKey struct {
	column string // SQL expression, already qualified
	isTime bool
	value  func(any) string // the item's sort value, for the next cursor
}

// orderings maps an ordering parameter to its key; "" orders by id.
type orderings map[string]sortKey

// names lists the allowed ordering values, for the enum of the parameter.
func (o orderings) names() []string {
	var out []string
	for k := range o {
		if k != "" {
			out = append(out, k, "-"+k)
		}
	}
	return out
}

// keyset applies ordering and the cursor position to q. idCol is the unique,
// time-ordered id column that breaks ties.
func keyset(q *bun.SelectQuery, ords orderings, ordering, idCol string, cur *cursor) (*bun.SelectQuery, error) {
	desc := strings.HasPrefix(ordering, "-")
	key, ok := ords[strings.TrimPrefix(ordering, "-")]
	if !ok {
		return nil, fmt.Errorf("%w: unknown ordering %q", ErrInvalidInput, ordering)
	}
	dir, cmp := "ASC", ">"
	if desc {
		dir, cmp = "DESC", "<"
	}
	if key.column == "" {
		if cur != nil {
			q = q.Where(idCol+" "+cmp+" ?", cur.ID)
		}
		return q.OrderExpr(idCol + " " + dir), nil
	}
	if cur != nil {
		var v any = cur.Value
		if key.isTime {
			t, err := time.Parse(time.RFC3339Nano, cur.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: malformed value", ErrBadCursor)
			}
			v = t
		}
		q = q.Where("("+key.column+" "+cmp+" ?) OR ("+key.column+" = ? AND "+idCol+" "+cmp+" ?)", v, v, cur.ID)
	}
	return q.OrderExpr(key.column + " " + dir).OrderExpr(idCol + " " + dir), nil
}

// makePage turns up to limit+1 rows into a page: the first limit rows become
// its items, and a row beyond them means a next page, whose cursor cursorOf
// makes from the page's last row.
func makePage[R, T any](rows []R, limit int, view func(R) T, cursorOf func(last R) string) Page[T] {
	p := Page[T]{Items: make([]T, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			next := cursorOf(rows[i-1])
			p.NextCursor = &next
			break
		}
		p.Items = append(p.Items, view(r))
	}
	return p
}

// cursorAfter returns the keyset cursor that follows item last, whose id is
// id, in the given ordering.
func (o orderings) cursorAfter(ordering string, id uuid.UUID, last any) string {
	c := cursor{Ordering: ordering, ID: id}
	if key := o[strings.TrimPrefix(ordering, "-")]; key.value != nil {
		c.Value = key.value(last)
	}
	return encodeCursor(c)
}

// likePattern returns a LIKE pattern matching s anywhere, with the LIKE
// metacharacters escaped (use with ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + strings.ToLower(r.Replace(s)) + "%"
}

func timeCursor(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
