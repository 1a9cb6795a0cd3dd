// Command sso-oidc sets up single sign-on for a tenant against a local
// OpenID Connect provider and logs a new person in through it, as a browser
// would: the reference server runs in process on SQLite in a temporary
// directory, the provider is authn/oidc/oidctest, and the "browser" is an
// http.Client with a cookie jar.
//
//	go run ./examples/sso-oidc
//
// The same steps work against a real server and a real provider: set
// SAASKIT_SSO_ENCRYPTION_KEY (32 random bytes, base64), register the
// provider with PUT /api/tenants/{id}/sso/oidc/, register the callback path
// it answers at your provider, and send people to the login path.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/saaskit/saaskit/authn/oidc/oidctest"
	"github.com/saaskit/saaskit/server"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sso-oidc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The platform, with SSO on: the key seals client secrets at rest.
	key := make([]byte, 32)
	rand.Read(key)
	cfg := server.Config{
		DatabaseURL:      filepath.Join(dir, "sso.db"),
		SSOEncryptionKey: base64.StdEncoding.EncodeToString(key),
		LogLevel:         "error",
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler), NoAccessLog: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// The tenant's identity provider, with the person who will sign in.
	idp := oidctest.New(oidctest.Config{
		ClientID: "acme-portal", ClientSecret: "provider-secret",
		Subject: "0001", Email: "grace@acme.example", Name: "Grace Hopper", EmailVerified: true,
	})
	defer idp.Close()

	// An owner registers the tenant and configures its provider.
	var reg struct {
		Tenant struct{ ID, Slug string }
		Access string
	}
	if err := call(ts.URL, "POST", "/api/auth/register/", "", map[string]any{
		"email": "owner@acme.example", "password": "correct-horse-battery",
		"full_name": "Owner", "tenant_name": "Acme",
	}, &reg); err != nil {
		return err
	}
	var conn struct {
		LoginPath    string `json:"login_path"`
		CallbackPath string `json:"callback_path"`
	}
	if err := call(ts.URL, "PUT", "/api/tenants/"+reg.Tenant.ID+"/sso/oidc/", reg.Access, map[string]any{
		"issuer": idp.URL, "client_id": "acme-portal", "client_secret": "provider-secret",
		"allowed_domains": []string{"acme.example"}, "default_role": "user",
	}, &conn); err != nil {
		return err
	}
	fmt.Fprintln(out, "login path:", conn.LoginPath)
	fmt.Fprintln(out, "callback path to register at the provider:", conn.CallbackPath)

	// A browser follows the login: server → provider → callback → tokens.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(ts.URL + conn.LoginPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tokens struct {
		Access    string `json:"access"`
		TokenType string `json:"token_type"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("login: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tokens); err != nil {
		return err
	}
	fmt.Fprintln(out, "signed in, token type:", tokens.TokenType)

	// The person is now a member of the tenant, provisioned just in time.
	var me struct {
		Email, Role string
		FullName    string `json:"full_name"`
	}
	if err := call(ts.URL, "GET", "/api/auth/profile/", tokens.Access, nil, &me); err != nil {
		return err
	}
	fmt.Fprintf(out, "profile: %s (%s), role %s\n", me.Email, me.FullName, me.Role)
	return nil
}

// call sends a JSON request and decodes a 2xx JSON answer into v.
func call(base, method, path, token string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
