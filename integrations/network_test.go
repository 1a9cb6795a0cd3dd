package integrations_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// resetServer closes the connection without a response on the first
// resets hits, then answers 200.
func resetServer(t *testing.T, resets int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(hits.Add(1)) <= resets {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestConnectionReset(t *testing.T) {
	t.Parallel()
	t.Run("then success", func(t *testing.T) {
		t.Parallel()
		srv, hits := resetServer(t, 2)
		rec := &recorder{}
		c := integrations.New(integrations.Config{InitialInterval: time.Millisecond, Observer: rec})
		resp, err := get(t, c, srv.URL)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v, %v", resp, err)
		}
		a := rec.Attempts()
		if len(a) != 3 || a[0].Err == nil || a[1].Err == nil || a[2].Err != nil || !a[0].Retried {
			t.Errorf("attempts = %+v", a)
		}
		if hits.Load() != 3 {
			t.Errorf("server hits = %d, want 3", hits.Load())
		}
	})
	t.Run("every attempt", func(t *testing.T) {
		t.Parallel()
		srv, hits := resetServer(t, 1000)
		c := integrations.New(integrations.Config{InitialInterval: time.Millisecond, MaxAttempts: 4})
		_, err := get(t, c, srv.URL)
		var te *integrations.TransportError
		if !errors.As(err, &te) || !errors.Is(err, integrations.ErrRetriesExhausted) || te.Attempts != 4 {
			t.Fatalf("err = %v, want *TransportError after 4 attempts", err)
		}
		if hits.Load() != 4 {
			t.Errorf("server hits = %d, want 4", hits.Load())
		}
	})
	t.Run("POST sent once", func(t *testing.T) {
		t.Parallel()
		srv, hits := resetServer(t, 1000)
		c := integrations.New(integrations.Config{InitialInterval: time.Millisecond})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, nil)
		if _, err := c.Do(req); err == nil {
			t.Fatal("no error")
		}
		if hits.Load() != 1 {
			t.Errorf("server hits = %d, want 1", hits.Load())
		}
	})
}

func TestSlowServerRealTimeout(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-r.Context().Done() // never answers in time
	}))
	t.Cleanup(srv.Close)
	c := integrations.New(integrations.Config{AttemptTimeout: 20 * time.Millisecond, InitialInterval: time.Millisecond})
	_, err := get(t, c, srv.URL)
	if !errors.Is(err, integrations.ErrRetriesExhausted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if hits.Load() != 3 {
		t.Errorf("hits = %d, want 3", hits.Load())
	}
}

func TestJSONHelpers(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		switch r.URL.Path {
		case "/user":
			if n == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"u1","email":"ada@example.com"}`)
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Idempotency-Key") != "k1" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			io.Copy(w, r.Body)
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"title":"not found"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := integrations.New(integrations.Config{InitialInterval: time.Millisecond})
	ctx := t.Context()

	var user struct{ ID, Email string }
	if err := c.GetJSON(ctx, srv.URL+"/user", &user); err != nil || user.Email != "ada@example.com" {
		t.Fatalf("GetJSON: %+v, %v", user, err)
	}
	var echo struct{ N int }
	h := http.Header{"Idempotency-Key": {"k1"}}
	if err := c.DoJSON(ctx, http.MethodPost, srv.URL+"/echo", map[string]int{"n": 7}, &echo, h); err != nil || echo.N != 7 {
		t.Fatalf("DoJSON: %+v, %v", echo, err)
	}
	if err := c.DoJSON(ctx, http.MethodDelete, srv.URL+"/none", nil, &echo, nil); err != nil {
		t.Fatalf("204: %v", err)
	}
	err := c.GetJSON(ctx, srv.URL+"/missing", &user)
	var se *integrations.StatusError
	if !errors.As(err, &se) || !errors.Is(err, integrations.ErrUnexpectedStatus) || se.StatusCode != 404 ||
		se.Attempts != 1 || string(se.Body) != `{"title":"not found"}` {
		t.Fatalf("404: %v", err)
	}
}
