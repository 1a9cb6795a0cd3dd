package apidocs_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/server/apidocs"
)

// testSpec is a small OpenAPI 3.1 document with two operations.
const testSpec = `{
  "openapi": "3.1.0",
  "info": {"title": "saaskit test API", "version": "1.0.0"},
  "paths": {
    "/api/users/": {
      "get": {
        "operationId": "listUsers",
        "summary": "List users",
        "description": "Lists the members of the **current tenant**, newest first.\n\n| parameter | meaning |\n|---|---|\n| limit | page size |\n\n` + "`GET /api/users/?limit=10`" + `",
        "tags": ["users"],
        "parameters": [
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
          {"name": "cursor", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": {"200": {"description": "The members of the current tenant.",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserList"}}}}}
      }
    },
    "/api/auth/login/": {
      "post": {
        "operationId": "login",
        "summary": "Log in",
        "tags": ["auth"],
        "requestBody": {
          "required": true,
          "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
              "email": {"type": "string", "format": "email"},
              "password": {"type": "string"},
              "tenant": {"type": ["string", "null"]}
            }
          }}}
        },
        "responses": {"200": {"description": "Tokens."}}
      }
    }
  },
  "components": {"schemas": {
    "User": {"type": "object", "properties": {
      "id": {"type": "string", "format": "uuid"},
      "email": {"type": "string", "format": "email"},
      "role": {"enum": ["user", "admin", "owner"]},
      "created_at": {"type": "string", "format": "date-time"}
    }},
    "UserList": {"type": "object", "properties": {
      "items": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
      "next_cursor": {"type": ["string", "null"]}
    }}
  }}
}`

// findChromium returns the path of a Chromium binary, or "" when there is none.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// runChromium runs headless Chromium on url with the given extra flags and
// returns its standard output and standard error.
func runChromium(t *testing.T, bin, url string, extra ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage",
		"--enable-logging=stderr", "--v=0",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=10000",
	}
	args = append(append(args, extra...), url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestBrowserRendersOperations(t *testing.T) {
	t.Parallel()
	bin := findChromium()
	if bin == "" {
		t.Skip("Chromium not found (looked for chromium, chromium-browser, google-chrome on PATH and /usr/bin/chromium): the docs page is not rendered")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(testSpec))
	})
	docs := apidocs.Handler(apidocs.Config{})
	mux.Handle("/api/docs", docs)
	mux.Handle("/api/docs/", docs)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dom, logs := runChromium(t, bin, srv.URL+"/api/docs#/users/listUsers", "--dump-dom")
	// Swagger UI puts a zero-width space before each "/" of a path so that
	// long paths wrap.
	dom = strings.ReplaceAll(dom, "\u200b", "")

	for _, op := range []struct{ method, path, summary string }{
		{"get", "/api/users/", "List users"},
		{"post", "/api/auth/login/", "Log in"},
	} {
		block := regexp.MustCompile(`(?s)<div class="opblock opblock-` + op.method + `[^"]*"[^>]*>.*?</div>\s*</div>`)
		found := false
		for _, b := range block.FindAllString(dom, -1) {
			if strings.Contains(b, `data-path="`+op.path+`"`) && strings.Contains(b, op.summary) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s %s (%q) operation block in the rendered page", strings.ToUpper(op.method), op.path, op.summary)
		}
	}
	if !strings.Contains(dom, "saaskit test API") {
		t.Error("the spec's title is not on the rendered page")
	}
	// The deep link expanded "List users": its Markdown description and its
	// response schema are rendered too.
	if !strings.Contains(dom, "<strong>current tenant</strong>") {
		t.Error("the Markdown description of the expanded operation is not rendered")
	}
	if !strings.Contains(dom, "UserList") {
		t.Error("the schemas are not rendered")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	// Chromium logs console messages, CSP violations among them, as
	// "CONSOLE" lines. A violation also means that the page tried to load
	// something from another origin.
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "CONSOLE") && strings.Contains(line, "Content Security Policy") {
			t.Errorf("the page broke its Content-Security-Policy: %s", line)
		}
	}

	// A screenshot to look at by hand: SAASKIT_APIDOCS_SCREENSHOT=out.png.
	if shot := os.Getenv("SAASKIT_APIDOCS_SCREENSHOT"); shot != "" {
		runChromium(t, bin, srv.URL+"/api/docs#/users/listUsers", "--screenshot="+shot, "--window-size=1280,900")
	}
}
