package server

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestServeShutsDownGracefully: a request in flight when the context ends is
// answered, and Serve returns without error.
func TestServeShutsDownGracefully(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestServer(t, db)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	var resp *http.Response
	for range 100 { // wait until it answers
		if resp, err = http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
}

func TestCORS(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestServer(t, db, func(c *Config) { c.CORSOrigins = "https://app.example.com" })
	req, _ := http.NewRequest("OPTIONS", s.ts.URL+"/api/users/", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization") // browsers send lower case
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("allowed origin: %q (status %d, headers %v)", got, resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err = s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin allowed: %q", got)
	}
}
