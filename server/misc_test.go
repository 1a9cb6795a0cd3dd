package server

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestEnvExample keeps .env.example in step with Config.
func TestEnvExample(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != EnvExample() {
		t.Fatalf(".env.example is out of date; regenerate it with: go run ./server/cmd/saaskit env-example > .env.example")
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"SAASKIT_ADDR": ":9999", "SAASKIT_ACCESS_TOKEN_TTL": "5m"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg, err := LoadConfig(fs, []string{"-access-token-ttl=7m"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9999" || cfg.AccessTokenTTL.Minutes() != 7 || cfg.DatabaseURL != "saaskit.db" {
		t.Errorf("cfg = %+v", cfg)
	}
	_, err = LoadConfig(flag.NewFlagSet("t", flag.ContinueOnError), nil, func(k string) string {
		if k == "SAASKIT_ACCESS_TOKEN_TTL" {
			return "soon"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "SAASKIT_ACCESS_TOKEN_TTL") {
		t.Errorf("bad duration: err = %v", err)
	}
}

func TestOpsEndpoints(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		s.must(200, "GET", "/healthz", "", nil)
		if r := s.must(200, "GET", "/readyz", "", nil); !strings.Contains(string(r.Body), `"up"`) {
			t.Errorf("readyz = %s", r.Body)
		}
		r := s.must(200, "GET", "/api/openapi.json", "", nil)
		var spec struct {
			OpenAPI string                    `json:"openapi"`
			Paths   map[string]map[string]any `json:"paths"`
		}
		r.decode(t, &spec)
		if !strings.HasPrefix(spec.OpenAPI, "3.1") {
			t.Errorf("openapi = %q", spec.OpenAPI)
		}
		for _, p := range []string{"/api/auth/register/", "/api/users/", "/api/users/{id}/", "/api/tenants/{id}/",
			"/api/integrations/webhooks/{provider}/{connection}/", "/api/integrations/webhooks/{provider}/{connection}/batch/"} {
			if _, ok := spec.Paths[p]; !ok {
				t.Errorf("spec lacks %s", p)
			}
		}
		if op, ok := spec.Paths["/api/integrations/webhooks/{provider}/{connection}/batch/"]["post"].(map[string]any); !ok ||
			op["responses"].(map[string]any)["207"] == nil {
			t.Errorf("batch receiver's operation: %v", op)
		}
		if r := s.must(200, "GET", "/api/docs", "", nil); !strings.Contains(string(r.Body), "<html") {
			t.Errorf("docs page: %.200s", r.Body)
		}
		r = s.must(200, "GET", "/.well-known/jwks.json", "", nil)
		if !strings.Contains(r.Header.Get("Cache-Control"), "max-age") || !strings.Contains(string(r.Body), `"kid"`) {
			t.Errorf("jwks: %v %s", r.Header, r.Body)
		}
		s.register("m@example.com", "Metrics")
		r = s.must(200, "GET", "/metrics", "", nil)
		if !strings.Contains(string(r.Body), `saaskit_http_requests_total{method="POST",route="/api/auth/register/",status="201"} 1`) {
			t.Errorf("metrics lack the register request:\n%s", grepLines(string(r.Body), "saaskit_http_requests_total"))
		}
		if r.Header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID")
		}
		r = s.do("GET", "/healthz", "", nil)
		if id := r.Header.Get("X-Request-ID"); len(id) != 32 {
			t.Errorf("request id %q", id)
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
