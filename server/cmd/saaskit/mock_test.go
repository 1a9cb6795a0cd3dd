package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMockServicesCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"mock-services", "-users-addr", "127.0.0.1:0", "-payments-addr", "127.0.0.1:0",
			"-users-connection", "0190c0de-0000-7000-8000-000000000001", "-users-secret", "whsec_c2VjcmV0"}, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "faults:") {
			break
		}
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest
	out := strings.Join(lines, "\n")
	for _, want := range []string{
		"user-service webhooks -> http://localhost:8080/api/integrations/webhooks/user-service/0190c0de-0000-7000-8000-000000000001/",
		"payment-service webhooks are not sent", "-payments-connection <id>", "SAASKIT_INTEGRATION_URLS=user-service=http://127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, l := range lines[:2] {
		url := strings.Fields(l)[2]
		resp, err := http.Get(url + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", url, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"mock-services", "-users-connection", "x", "-users-secret", "bad", "-users-addr", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil {
		t.Error("bad secret accepted")
	}
}
