package sqldb

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
)

// stmtCacheSize bounds the prepared statements kept by one SQLite
// connection.
const stmtCacheSize = 128

// cachingConnector opens SQLite connections that keep their prepared
// statements. SQLite compiles each statement before running it, and with
// the pure-Go driver that compilation costs as much as running a small
// insert: River's job queries, for one, are long constant statements run
// thousands of times a second. A query with arguments is prepared once per
// connection and reused; a query without arguments is run as is (Bun
// writes its values into the SQL text, so such texts rarely repeat).
type cachingConnector struct {
	dsn string
	drv driver.Driver
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newCachingConn(conn)
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// innerConn is what cachingConn needs of the driver's connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type stmtCtx interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is a connection with an LRU of prepared statements. A
// connection is used by one goroutine at a time (database/sql's rule), so
// it needs no lock; a statement whose rows are still open is busy, and a
// second use of its text meanwhile prepares a statement of its own.
type cachingConn struct {
	innerConn
	lru   *list.List // of *cachedStmt, most recent first
	byKey map[string]*list.Element
}

type cachedStmt struct {
	query string
	stmt  stmtCtx
	busy  bool
}

func newCachingConn(c driver.Conn) (driver.Conn, error) {
	ic, ok := c.(innerConn)
	if !ok {
		c.Close()
		return nil, errors.New("sqldb: the SQLite driver's connection lacks a context method")
	}
	return &cachingConn{innerConn: ic, lru: list.New(), byKey: map[string]*list.Element{}}, nil
}

// Unwrap returns the driver's connection, for sql.Conn.Raw users.
func (c *cachingConn) Unwrap() driver.Conn { return c.innerConn }

// stmt returns the cached statement of query, preparing it if need be; ok
// is false when the cached one is busy.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, bool, error) {
	if e, found := c.byKey[query]; found {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, false, nil
		}
		c.lru.MoveToFront(e)
		return cs, true, nil
	}
	st, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	sc, ok := st.(stmtCtx)
	if !ok {
		st.Close()
		return nil, false, errors.New("sqldb: the SQLite driver's statement lacks a context method")
	}
	cs := &cachedStmt{query: query, stmt: sc}
	c.byKey[query] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		last := c.lru.Back()
		old := last.Value.(*cachedStmt)
		if old.busy {
			break // closed when its rows are
		}
		c.lru.Remove(last)
		delete(c.byKey, old.query)
		old.stmt.Close()
	}
	return cs, true, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) == 0 {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	cs, ok, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if !ok {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) == 0 {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	cs, ok, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if !ok {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, release: func() { c.release(cs) }}, nil
}

// release marks cs free once its rows are closed, and closes it if it was
// evicted meanwhile.
func (c *cachingConn) release(cs *cachedStmt) {
	cs.busy = false
	if e, found := c.byKey[cs.query]; !found || e.Value.(*cachedStmt) != cs {
		cs.stmt.Close()
	}
}

func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).stmt.Close()
	}
	c.lru.Init()
	clear(c.byKey)
	return c.innerConn.Close()
}

// cachedRows releases its statement when closed.
type cachedRows struct {
	driver.Rows
	release func()
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return err
}

// The driver's rows describe their columns; so do cachedRows.
var (
	_ driver.RowsColumnTypeDatabaseTypeName = (*cachedRows)(nil)
	_ driver.RowsColumnTypeLength           = (*cachedRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*cachedRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*cachedRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*cachedRows)(nil)
)

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
