// Package tenancy carries the tenant of a request and keeps every query on
// tenant-owned data inside it.
//
// A tenant ([Tenant]) is an organization, the unit of isolation. It travels in
// the context ([WithTenant], [FromContext]); an HTTP [Middleware] puts it there
// after a [Resolver] (token claim, header, subdomain or path) names it and a
// [Lookup] finds it ([CachedLookup] over the tenants [Store]).
//
// Isolation is enforced twice.
//
// In the application, tenant-owned Bun models embed [Scoped]: its model hooks
// add `tenant_id = <tenant>` to every SELECT, UPDATE and DELETE and stamp the
// tenant on INSERT, and a query with no tenant in the context fails with
// [ErrNoTenant] unless the context is marked by [System]. A [Guard] installed
// as a Bun query hook sees what model hooks cannot (raw SQL, and the Count,
// Exists, Rows and Exec of a SelectQuery, which Bun runs without hooks: scope
// those with [Scope]) and stops them before they reach the database.
//
// In Postgres, tenant tables have row-level security ([EnableRLS]) and each
// tenant transaction run by a [TxRunner] sets `app.tenant_id` and, when
// configured, switches to an application role without BYPASSRLS
// ([EnsureAppRole]), so that a query that forgets its WHERE still sees one
// tenant. [CheckRLS] tells at start whether that holds.
//
// The shortest real use:
//
//	type Project struct {
//		bun.BaseModel `bun:"table:projects"`
//		tenancy.Scoped
//		ID   int64  `bun:"id,pk,autoincrement"`
//		Name string `bun:"name,notnull"`
//	}
//
//	db.AddQueryHook(tenancy.NewGuard("projects"))
//	mux.Handle("/api/", tenancy.Middleware(
//		tenancy.HeaderResolver(""), &tenancy.CachedLookup{DB: db})(api))
//
//	// in a handler: only this tenant's projects, or ErrNoTenant
//	var ps []Project
//	err := db.NewSelect().Model(&ps).Scan(r.Context())
//
// The tenants table is created by [Migrate] (bun/migrate, recorded in
// [MigrationTable]); packages that own tenant tables create them in their own
// migrations, call [EnableRLS] for each, register them with [Guard.Add], and
// the server calls [EnsureAppRole] after all migrations.
//
// Choices made here: tenant ids are UUIDv7 stored as their canonical text on
// SQLite and as uuid on Postgres; a tenant in the context wins over [System];
// a model insert under [System] must carry its own TenantID; the [Guard]
// matches table names against every identifier of the SQL and so fails closed
// on a column that happens to share a guarded table's name; [CachedLookup]
// keeps answers, including "not found", for five seconds by default.
package tenancy
