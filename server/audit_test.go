package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

type auditPage struct {
	Items      []AuditEventView `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

// auditLog reads every event of the caller's chain (or the query's), oldest
// first.
func (s *testServer) auditLog(token, query string) []AuditEventView {
	s.t.Helper()
	var all []AuditEventView
	cur := ""
	for range 100 {
		q := query + "&limit=100"
		if cur != "" {
			q += "&cursor=" + url.QueryEscape(cur)
		}
		var p auditPage
		s.must(http.StatusOK, "GET", "/api/audit/logs/?"+q, token, nil).decode(s.t, &p)
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			break
		}
		cur = *p.NextCursor
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

func actions(evs []AuditEventView) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action
	}
	return out
}

func findEvent(t *testing.T, evs []AuditEventView, action string) AuditEventView {
	t.Helper()
	for _, e := range evs {
		if e.Action == action {
			return e
		}
	}
	t.Fatalf("no %s event in %v", action, actions(evs))
	return AuditEventView{}
}

func TestAuditEventsForEveryChange(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		hdr := http.Header{"X-Request-Id": {"req-register-1"}, "User-Agent": {"audit-test/1"}}
		r := s.doH("POST", "/api/auth/register/", "", map[string]any{
			"email": "owner@audit.example.com", "password": testPassword, "full_name": "Owner", "tenant_name": "Audit",
		}, hdr)
		if r.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.Status, r.Body)
		}
		var reg struct {
			User    struct{ ID string }
			Tenant  struct{ ID string }
			Access  string
			Refresh string
		}
		r.decode(t, &reg)
		owner := session{UserID: reg.User.ID, TenantID: reg.Tenant.ID, Access: reg.Access, Refresh: reg.Refresh}

		evs := s.auditLog(owner.Access, "")
		if got := strings.Join(actions(evs), ","); got != "user.created,tenant.created,member.created" {
			t.Fatalf("register events = %s", got)
		}
		for _, e := range evs {
			if e.Actor.Type != audit.ActorUser || e.Actor.ID != owner.UserID || e.RequestID != "req-register-1" ||
				e.IP != "127.0.0.1" || e.UserAgent != "audit-test/1" || e.TenantID.String() != owner.TenantID {
				t.Errorf("register event %+v", e)
			}
		}

		// Members: create, role change, name and state, removal.
		member := s.addMember(owner, "m@audit.example.com", "user")
		s.must(http.StatusOK, "PATCH", "/api/users/"+member.UserID+"/", owner.Access, map[string]any{"role": "admin"})
		s.must(http.StatusOK, "PATCH", "/api/users/"+member.UserID+"/", owner.Access, map[string]any{"full_name": "Renamed", "is_active": false})
		s.must(http.StatusNoContent, "DELETE", "/api/users/"+member.UserID+"/", owner.Access, nil)
		// Tenant update, profile change with a new password.
		s.must(http.StatusOK, "PATCH", "/api/tenants/"+owner.TenantID+"/", owner.Access, map[string]any{"name": "Audit Renamed"})
		newPassword := "another-horse-battery"
		s.must(http.StatusOK, "PATCH", "/api/auth/profile/", owner.Access, map[string]any{
			"full_name": "Owner Renamed", "password": newPassword, "current_password": testPassword,
		})
		// Security events: a failed login of a known user, a success, a
		// refresh token reused after rotation.
		problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "owner@audit.example.com", "password": "wrong-password-x"}), http.StatusUnauthorized)
		r = s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "owner@audit.example.com", "password": newPassword})
		var pair struct{ Access, Refresh string }
		r.decode(t, &pair)
		s.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": pair.Refresh})
		s.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": pair.Refresh}) // within the grace: no reuse

		evs = s.auditLog(pair.Access, "")
		want := []string{
			"user.created", "tenant.created", "member.created", // register
			"member.created", "auth.login_succeeded", // addMember
			"member.role_changed", "member.updated", "member.removed",
			"tenant.updated", "user.updated", "user.password_changed",
			"auth.login_failed", "auth.login_succeeded",
		}
		if got, w := strings.Join(actions(evs), ","), strings.Join(want, ","); got != w {
			t.Fatalf("events\n got %s\nwant %s", got, w)
		}
		rc := findEvent(t, evs, "member.role_changed")
		if rc.Changes["role"].Before != "user" || rc.Changes["role"].After != "admin" || rc.Actor.ID != owner.UserID || rc.ResourceID != member.UserID {
			t.Errorf("role change = %+v", rc)
		}
		mc := evs[3]
		if mc.Action != "member.created" || mc.Changes["email"].After != "m@audit.example.com" || mc.Changes["new_user"].After != true || mc.Changes["role"].After != "user" {
			t.Errorf("member.created = %+v", mc)
		}
		upd := findEvent(t, evs, "member.updated")
		if upd.Changes["full_name"].After != "Renamed" || upd.Changes["is_active"].After != false {
			t.Errorf("member.updated = %+v", upd.Changes)
		}
		tu := findEvent(t, evs, "tenant.updated")
		if tu.Changes["name"].Before != "Audit" || tu.Changes["name"].After != "Audit Renamed" || len(tu.Changes) != 1 {
			t.Errorf("tenant.updated = %+v", tu.Changes)
		}
		pc := findEvent(t, evs, "user.password_changed")
		if pc.Changes["password"].After != audit.Redacted {
			t.Errorf("password change = %+v", pc.Changes)
		}
		failed := findEvent(t, evs, "auth.login_failed")
		if failed.ResourceID != owner.UserID || failed.Changes["reason"].After != "wrong_password" {
			t.Errorf("login failed = %+v", failed)
		}
		// No password or hash anywhere in the log.
		raw := s.must(http.StatusOK, "GET", "/api/audit/logs/?limit=100", pair.Access, nil).Body
		for _, secret := range []string{testPassword, newPassword, "wrong-password-x", "argon2id"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("audit log contains %q", secret)
			}
		}

		// Reuse after the grace revokes the family and records it.
		s2 := newTestServer(t, db, func(c *Config) { c.RefreshReuseGrace = -1 })
		r = s2.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "owner@audit.example.com", "password": newPassword})
		r.decode(t, &pair)
		s2.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": pair.Refresh})
		problemOf(t, s2.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": pair.Refresh}), http.StatusUnauthorized)
		evs = s.auditLog(pair.Access, "action=auth.refresh_reuse_detected")
		if len(evs) != 1 || evs[0].Actor.ID != owner.UserID {
			t.Fatalf("reuse events = %+v", evs)
		}

		// An unknown email leaves a platform event without the address; the
		// superuser's creation is a platform event too.
		problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "nobody@audit.example.com", "password": "whatever-pass"}), http.StatusUnauthorized)
		if _, err := s.srv.CreateSuperuser(audit.WithActor(t.Context(), CLIActor), "root@audit.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		root := s.login("root@audit.example.com", "")
		platform := s.auditLog(root.Access, "")
		if got := strings.Join(actions(platform), ","); got != "auth.login_failed,user.created,user.superadmin_granted,auth.login_succeeded" {
			t.Fatalf("platform events = %s", got)
		}
		if platform[0].ResourceID != "" || bytes.Contains(s.must(http.StatusOK, "GET", "/api/audit/logs/", root.Access, nil).Body, []byte("nobody@")) {
			t.Errorf("unknown email recorded: %+v", platform[0])
		}
		if g := platform[2]; g.Actor != CLIActor || g.Changes["is_superadmin"].After != true {
			t.Errorf("superadmin grant = %+v", g)
		}

		// Deleting the tenant closes its chain and notes it in the platform's.
		s.must(http.StatusNoContent, "DELETE", "/api/tenants/"+owner.TenantID+"/", pair.Access, nil)
		if evs := s.auditLog(root.Access, "tenant="+owner.TenantID+"&action=tenant.deleted"); len(evs) != 1 {
			t.Errorf("tenant chain deletion events: %v", actions(evs))
		}
		if evs := s.auditLog(root.Access, "action=tenant.deleted"); len(evs) != 1 || evs[0].ResourceID != owner.TenantID {
			t.Errorf("platform deletion events: %+v", evs)
		}
		for _, chain := range []string{owner.TenantID, uuid.Nil.String()} {
			var v verifyAuditOutput
			s.must(http.StatusOK, "GET", "/api/audit/verify/?tenant="+chain, root.Access, nil).decode(t, &v.Body)
			if !v.Body.Valid || v.Body.Broken != nil {
				t.Errorf("chain %s: %+v", chain, v.Body)
			}
		}
	})
}

// failingRecorder records through the store unless the event's action is
// the one it is told to fail.
type failingRecorder struct {
	store  *audit.Store
	action atomic.Value // string
}

var errRecordFailed = errors.New("test: audit record failed")

func (f *failingRecorder) Record(ctx context.Context, db bun.IDB, ev *audit.Event) error {
	if a, _ := f.action.Load().(string); a == ev.Action {
		return errRecordFailed
	}
	return f.store.Record(ctx, db, ev)
}

func countEvents(t *testing.T, db bun.IDB) int64 {
	t.Helper()
	n, err := db.NewSelect().Table("audit_events").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditFailureRollsBackTheChange(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		rec := &failingRecorder{store: &audit.Store{}}
		s := newTestServerOpts(t, db, Options{AuditRecorder: rec})
		owner := s.register("owner@fail.example.com", "Fail")
		member := s.addMember(owner, "m@fail.example.com", "user")

		for _, tc := range []struct {
			action, method, path string
			body                 any
			check                func()
		}{
			{"member.created", "POST", "/api/users/", map[string]any{"email": "new@fail.example.com", "full_name": "N", "role": "user"}, func() {
				n, _ := db.NewSelect().Table("users").Where("email = ?", "new@fail.example.com").Count(t.Context())
				if n != 0 {
					t.Error("user created although its event failed")
				}
			}},
			{"member.role_changed", "PATCH", "/api/users/" + member.UserID + "/", map[string]any{"role": "admin"}, func() {
				r := s.must(http.StatusOK, "GET", "/api/users/"+member.UserID+"/", owner.Access, nil)
				if r.JSON()["role"] != "user" {
					t.Errorf("role changed although its event failed: %s", r.Body)
				}
			}},
			{"member.removed", "DELETE", "/api/users/" + member.UserID + "/", nil, func() {
				s.must(http.StatusOK, "GET", "/api/users/"+member.UserID+"/", owner.Access, nil)
			}},
			{"tenant.updated", "PATCH", "/api/tenants/" + owner.TenantID + "/", map[string]any{"name": "Changed"}, func() {
				r := s.must(http.StatusOK, "GET", "/api/tenants/"+owner.TenantID+"/", owner.Access, nil)
				if r.JSON()["name"] != "Fail" {
					t.Errorf("tenant changed although its event failed: %s", r.Body)
				}
			}},
			{"auth.login_succeeded", "POST", "/api/auth/login/", map[string]any{"email": "owner@fail.example.com", "password": testPassword}, func() {
				n, _ := db.NewSelect().Table("refresh_tokens").Where("user_id = ?", uuid.MustParse(owner.UserID)).Count(t.Context())
				if n != 1 { // the registration's only
					t.Errorf("%d refresh tokens: a login without its event issued one", n)
				}
			}},
		} {
			before := countEvents(t, db)
			rec.action.Store(tc.action)
			problemOf(t, s.do(tc.method, tc.path, owner.Access, tc.body), http.StatusInternalServerError)
			rec.action.Store("")
			tc.check()
			if n := countEvents(t, db); n != before {
				t.Errorf("%s: %d events written by a rolled-back change", tc.action, n-before)
			}
		}

		// A change that fails leaves no event.
		before := countEvents(t, db)
		problemOf(t, s.do("POST", "/api/users/", owner.Access, map[string]any{"email": "m@fail.example.com", "full_name": "x", "role": "user"}), http.StatusConflict)
		problemOf(t, s.do("DELETE", "/api/users/"+owner.UserID+"/", owner.Access, nil), http.StatusConflict) // last owner
		if n := countEvents(t, db); n != before {
			t.Errorf("failed changes wrote %d events", n-before)
		}
		// The chain is intact after all that.
		var v verifyAuditOutput
		s.must(http.StatusOK, "GET", "/api/audit/verify/", owner.Access, nil).decode(t, &v.Body)
		if !v.Body.Valid || v.Body.Events < 5 {
			t.Errorf("verify = %+v", v.Body)
		}
	})
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@tamper.example.com", "Tamper")
		s.addMember(owner, "m@tamper.example.com", "user")
		evs := s.auditLog(owner.Access, "")
		target := evs[2] // member.created of the owner

		// Behind the application's back, as the database owner.
		q := "DROP TRIGGER audit_events_no_update"
		if db.IsPostgres() {
			q += " ON audit_events"
		}
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
		res, err := db.NewUpdate().Table("audit_events").Set("action = ?", "member.removed").
			Where("pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = ?)", uuid.MustParse(owner.TenantID), target.Seq).Exec(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("tampered %d rows", n)
		}
		var v verifyAuditOutput
		s.must(http.StatusOK, "GET", "/api/audit/verify/", owner.Access, nil).decode(t, &v.Body)
		if v.Body.Valid || v.Body.Broken == nil || v.Body.Broken.Seq != target.Seq || v.Body.Broken.EventID != target.ID ||
			v.Body.Broken.Reason != audit.ReasonHashMismatch || v.Body.Events != target.Seq-1 {
			t.Fatalf("verify = %+v (broken %+v), want a hash mismatch at seq %d", v.Body, v.Body.Broken, target.Seq)
		}
	})
}

func TestAuditLogsAPI(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		a := s.register("owner@a.example.com", "Tenant A")
		admin := s.addMember(a, "admin@a.example.com", "admin")
		user := s.addMember(a, "user@a.example.com", "user")
		for i := range 12 {
			role := []string{"admin", "user"}[i%2]
			s.must(http.StatusOK, "PATCH", "/api/users/"+user.UserID+"/", a.Access, map[string]any{"role": role})
		}
		b := s.register("owner@b.example.com", "Tenant B")

		// Pagination: newest first, disjoint pages, all of them.
		all := s.auditLog(admin.Access, "")
		if len(all) != 3+2+2+12 {
			t.Fatalf("%d events: %v", len(all), actions(all))
		}
		for i, e := range all {
			if e.Seq != int64(i+1) {
				t.Fatalf("event %d has seq %d", i, e.Seq)
			}
		}
		var p auditPage
		s.must(http.StatusOK, "GET", "/api/audit/logs/?limit=5", admin.Access, nil).decode(t, &p)
		if len(p.Items) != 5 || p.Items[0].Seq != 19 || p.NextCursor == nil {
			t.Fatalf("first page = %+v", p)
		}
		var p2 auditPage
		s.must(http.StatusOK, "GET", "/api/audit/logs/?limit=5&cursor="+url.QueryEscape(*p.NextCursor), admin.Access, nil).decode(t, &p2)
		if len(p2.Items) != 5 || p2.Items[0].Seq != 14 {
			t.Fatalf("second page = %+v", p2)
		}

		// Filters.
		if evs := s.auditLog(a.Access, "action=member.role_changed"); len(evs) != 12 {
			t.Errorf("action filter: %d", len(evs))
		}
		if evs := s.auditLog(a.Access, "resource_type=member&resource_id="+admin.UserID); len(evs) != 1 || evs[0].Action != "member.created" {
			t.Errorf("resource filter: %v", actions(evs))
		}
		if evs := s.auditLog(a.Access, "actor="+admin.UserID); len(evs) != 1 || evs[0].Action != "auth.login_succeeded" {
			t.Errorf("actor filter: %v", actions(evs))
		}
		mid := all[10].CreatedAt
		after := s.auditLog(a.Access, "created_after="+url.QueryEscape(mid.Format("2006-01-02T15:04:05.999999999Z07:00")))
		for _, e := range after {
			if !e.CreatedAt.After(mid) {
				t.Errorf("created_after returned %v", e.CreatedAt)
			}
		}
		if len(after) == 0 || len(after) >= len(all) {
			t.Errorf("created_after: %d of %d", len(after), len(all))
		}
		if evs := s.auditLog(a.Access, "created_before=2000-01-01T00:00:00Z"); len(evs) != 0 {
			t.Errorf("created_before: %d", len(evs))
		}
		problemOf(t, s.do("GET", "/api/audit/logs/?cursor=bm9wZQ", a.Access, nil), http.StatusUnprocessableEntity)
		problemOf(t, s.do("GET", "/api/audit/logs/?limit=101", a.Access, nil), http.StatusUnprocessableEntity)

		// Isolation: B's owner sees only B's events, and A's chain is not
		// found for it; A's plain user is forbidden.
		bEvents := s.auditLog(b.Access, "")
		if len(bEvents) != 3 {
			t.Errorf("B sees %d events", len(bEvents))
		}
		for _, e := range bEvents {
			if e.TenantID.String() != b.TenantID {
				t.Errorf("B sees an event of %s", e.TenantID)
			}
		}
		problemOf(t, s.do("GET", "/api/audit/logs/?tenant="+a.TenantID, b.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("GET", "/api/audit/verify/?tenant="+a.TenantID, b.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("GET", "/api/audit/logs/?tenant="+uuid.Nil.String(), a.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("GET", "/api/audit/logs/", user.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("GET", "/api/audit/verify/", user.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("GET", "/api/audit/logs/?tenant="+b.TenantID, user.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("GET", "/api/audit/logs/", "", nil), http.StatusUnauthorized)

		// A superadmin reads any tenant.
		if _, err := s.srv.CreateSuperuser(t.Context(), "root@a.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		root := s.login("root@a.example.com", "")
		if evs := s.auditLog(root.Access, "tenant="+a.TenantID); len(evs) != len(all) {
			t.Errorf("superadmin reads %d of A's %d events", len(evs), len(all))
		}
	})
}

func TestAuditExportVerifiesOffline(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@export.example.com", "Export")
		s.addMember(owner, "m@export.example.com", "user")
		tenant := uuid.MustParse(owner.TenantID)

		var buf bytes.Buffer
		if err := s.srv.AuditExport(t.Context(), tenant, &buf); err != nil {
			t.Fatal(err)
		}
		key := s.srv.AuditVerifierKey()
		res, err := VerifyAuditExport(bytes.NewReader(buf.Bytes()), key)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if res.Size != 5 || res.TenantID != tenant {
			t.Fatalf("export = %+v", res)
		}
		// New events: the next export signs a newer checkpoint first.
		s.must(http.StatusOK, "PATCH", "/api/tenants/"+owner.TenantID+"/", owner.Access, map[string]any{"name": "Export 2"})
		var buf2 bytes.Buffer
		if err := s.srv.AuditExport(t.Context(), tenant, &buf2); err != nil {
			t.Fatal(err)
		}
		if res, err := VerifyAuditExport(&buf2, key); err != nil || res.Size != 6 {
			t.Fatalf("second export: %+v %v", res, err)
		}
		// Any changed byte fails verification.
		data := buf.Bytes()
		for _, i := range []int{10, len(data) / 3, len(data) / 2, len(data) - 10} {
			bad := bytes.Clone(data)
			bad[i] ^= 0x01
			if _, err := VerifyAuditExport(bytes.NewReader(bad), key); err == nil {
				t.Errorf("export with byte %d changed verifies", i)
			}
		}
		// Another key does not verify it.
		_, other, _ := audit.GenerateNoteKey(auditKeyName)
		if _, err := VerifyAuditExport(bytes.NewReader(data), other); err == nil {
			t.Error("export verifies with another key")
		}
		// Scheduled checkpoints cover every chain with new events.
		s.register("owner2@export.example.com", "Export Two")
		n, err := s.srv.AuditCheckpointAll(t.Context())
		if err != nil || n != 1 {
			t.Errorf("checkpoint all: %d, %v", n, err)
		}
		if n, _ := s.srv.AuditCheckpointAll(t.Context()); n != 0 {
			t.Errorf("checkpoint all again: %d", n)
		}
	})
}

func TestAuditRoleRestricted(t *testing.T) {
	db := dbtest.Postgres(t)
	newTestServer(t, db)
	for _, priv := range []string{"UPDATE", "DELETE", "TRUNCATE"} {
		var has bool
		if err := db.NewRaw("SELECT has_table_privilege(?, 'audit_events', ?)", "saaskit_app", priv).Scan(t.Context(), &has); err != nil {
			t.Fatal(err)
		}
		if has {
			t.Errorf("app role has %s on audit_events", priv)
		}
	}
	var has bool
	if err := db.NewRaw("SELECT has_table_privilege(?, 'audit_events', 'INSERT')", "saaskit_app").Scan(t.Context(), &has); err != nil || !has {
		t.Errorf("app role cannot insert audit events: %v", err)
	}
}
