package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/saaskit/saaskit/server"
	"github.com/saaskit/saaskit/server/mockservices"
)

// mockServicesCmd runs the mock user and payment services until ctx ends.
func mockServicesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("saaskit mock-services", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usersAddr := fs.String("users-addr", "127.0.0.1:9101", "address of the user service")
	paymentsAddr := fs.String("payments-addr", "127.0.0.1:9102", "address of the payment service")
	platform := fs.String("platform", "http://localhost:8080", "base URL of the platform that receives the webhooks")
	usersConn := fs.String("users-connection", "", "id of the platform's user-service connection (webhooks are only recorded without it)")
	usersSecret := fs.String("users-secret", "", "signing secret (whsec_...) of the user-service connection")
	paymentsConn := fs.String("payments-connection", "", "id of the platform's payment-service connection")
	paymentsSecret := fs.String("payments-secret", "", "signing secret (whsec_...) of the payment-service connection")
	account := fs.String("account", "acct_1", "the account id both services report; use it as the connection's external_account")
	seed := fs.Uint64("seed", 0, "seed of the fault and id random source (0: 1)")
	var f mockservices.Faults
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "share of API requests answered 500")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", 0, "share of API requests answered 429")
	fs.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After of an injected 429")
	fs.Float64Var(&f.TimeoutRate, "timeout-rate", 0, "share of API requests that never answer")
	fs.DurationVar(&f.Latency, "latency", 0, "latency added to every API answer")
	fs.Float64Var(&f.DropWebhookRate, "drop-webhook-rate", 0, "share of webhooks never sent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := server.NewLogger(stderr, "text", "info")
	hook := func(provider, conn, secret string) mockservices.Webhook {
		if conn == "" {
			return mockservices.Webhook{}
		}
		return mockservices.Webhook{URL: strings.TrimRight(*platform, "/") + "/api/integrations/webhooks/" + provider + "/" + conn + "/", Secret: secret}
	}
	cfg := func(provider, conn, secret string) mockservices.Config {
		return mockservices.Config{Webhook: hook(provider, conn, secret), Faults: f, Seed: *seed, Account: *account,
			Logger: log.With(slog.String("service", provider))}
	}
	users, err := mockservices.NewUserService(cfg(server.ProviderUserService, *usersConn, *usersSecret))
	if err != nil {
		return fmt.Errorf("user service: %w", err)
	}
	payments, err := mockservices.NewPaymentService(cfg(server.ProviderPaymentService, *paymentsConn, *paymentsSecret))
	if err != nil {
		return fmt.Errorf("payment service: %w", err)
	}
	ul, err := net.Listen("tcp", *usersAddr)
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", *paymentsAddr)
	if err != nil {
		ul.Close()
		return err
	}
	uURL, pURL := "http://"+ul.Addr().String(), "http://"+pl.Addr().String()
	fmt.Fprintf(stdout, "user service:    %s (account %s)\n", uURL, *account)
	fmt.Fprintf(stdout, "payment service: %s (account %s)\n", pURL, *account)
	fmt.Fprintf(stdout, "platform: SAASKIT_INTEGRATION_URLS=%s=%s,%s=%s (health checks and reconciliation call these)\n",
		server.ProviderUserService, uURL, server.ProviderPaymentService, pURL)
	for _, s := range []struct{ provider, flag, conn string }{
		{server.ProviderUserService, "users", *usersConn}, {server.ProviderPaymentService, "payments", *paymentsConn},
	} {
		if s.conn != "" {
			fmt.Fprintf(stdout, "%s webhooks -> %s\n", s.provider, hook(s.provider, s.conn, "").URL)
			continue
		}
		fmt.Fprintf(stdout, "%s webhooks are not sent: connect it on the platform (as a tenant admin) with\n"+
			"  POST %s/api/integrations/connections/ {\"provider\": %q, \"external_account\": %q}\n"+
			"  and restart with -%s-connection <id> -%s-secret <secret>\n",
			s.provider, strings.TrimRight(*platform, "/"), s.provider, *account, s.flag, s.flag)
	}
	fmt.Fprintln(stdout, "faults: GET or PUT <service>/admin/faults, for example "+
		`{"error_rate": 0.5, "latency": "200ms", "rate_limit_rate": 0.1, "retry_after": "2s", "timeout_rate": 0, "drop_webhook_rate": 0, "down": false}`)
	servers := []*http.Server{
		{Handler: users, ReadHeaderTimeout: 10 * time.Second},
		{Handler: payments, ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, 2)
	go func() { errc <- servers[0].Serve(ul) }()
	go func() { errc <- servers[1].Serve(pl) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx) //nolint:errcheck // best effort on exit
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
