package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{Ordering: "email", Value: "a@example.com", ID: [16]byte{1}}), "email")
	f.Add(encodeCursor(cursor{ID: [16]byte{2}}), "")
	f.Add("eyJvIjoiIn0", "")
	f.Add("!!", "-created_at")
	f.Fuzz(func(t *testing.T, s, ordering string) {
		c, err := decodeCursor(s, ordering)
		if err != nil {
			if c != nil {
				t.Fatal("cursor with an error")
			}
			return
		}
		if s != "" && (c == nil || c.Ordering != ordering) {
			t.Fatalf("decoded %q for ordering %q: %+v", s, ordering, c)
		}
	})
}

// FuzzListQuery sends arbitrary query strings to the member list: every
// answer is a page or a client error, never a server error.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{
		"limit=5", "limit=0", "limit=-1", "limit=1e9", "cursor=abc", "ordering=-email&role=admin",
		"email=%25&search=_", "created_after=2020-01-01T00:00:00Z", "created_before=x", "ordering=email&cursor=eyJvIjoiZW1haWwiLCJ2IjoiIiwiaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDEifQ",
		"is_active=true", "search=%00", "unknown=1", "limit=5&limit=6",
	} {
		f.Add(q)
	}
	db := dbtest.SQLite(f)
	srv, err := New(f.Context(), Config{DatabaseURL: db.URL}, Options{DB: db.DB, NoAccessLog: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/auth/register/", jsonBody(`{"email":"fuzz@example.com","password":"correct-horse-battery","full_name":"F","tenant_name":"Fuzz"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		f.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	var reg struct{ Access string }
	decodeInto(f, rec.Body.Bytes(), &reg)
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/api/users/", nil)
		req.URL.RawQuery = q
		req.Header.Set("Authorization", "Bearer "+reg.Access)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("query %q: status %d: %s", q, rec.Code, rec.Body)
		}
	})
}
