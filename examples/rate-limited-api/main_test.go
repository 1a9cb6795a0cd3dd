package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := runWith(&out, ""); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`request 1                200  RateLimit-Policy: "api";q=3;w=60  RateLimit: "api";r=2;t=20`,
		`request 3                200  RateLimit-Policy: "api";q=3;w=60  RateLimit: "api";r=0;t=60`,
		`request 4                429  RateLimit-Policy: "api";q=3;w=60  RateLimit: "api";r=0;t=60`,
		`Retry-After: 20  application/problem+json: Too Many Requests  rate limit exceeded for scope "api"; retry after 20s`,
		`request 5                200`,
		`request 6                429`,
		`key-free-2               200  RateLimit-Policy: "api";q=3;w=60  RateLimit: "api";r=2;t=20`,
		`key-pro                  200  RateLimit-Policy: "api";q=60;w=60  RateLimit: "api";r=9;t=1`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
}

// TestRunRedis runs the shared-limit part when a test Redis is configured.
func TestRunRedis(t *testing.T) {
	url := os.Getenv("SAASKIT_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SAASKIT_TEST_REDIS_URL is not set")
	}
	var out bytes.Buffer
	if err := runWith(&out, url); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	// Statuses only: Redis keeps time itself, so the reset seconds may vary.
	for _, want := range []string{
		`request 1 to replica A   200`,
		`request 2 to replica B   200`,
		`request 3 to replica A   200`,
		`request 4 to replica B   429`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`(?m)^ +Retry-After: \d+ +application/problem\+json`).MatchString(out.String()) {
		t.Errorf("no Retry-After on the shared 429\n%s", out.String())
	}
}
