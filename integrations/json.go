package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// GetJSON sends a GET request to url through [Client.Do] and decodes a 2xx
// response body into out. It returns the errors of Do, and a [*StatusError]
// wrapping [ErrUnexpectedStatus] for a status outside 2xx.
func (c *Client) GetJSON(ctx context.Context, url string, out any) error {
	return c.DoJSON(ctx, http.MethodGet, url, nil, out, nil)
}

// DoJSON sends a request with in encoded as its JSON body (none when in is
// nil) and decodes a 2xx response body into out (skipped when out is nil or
// the body is empty). header is added to the request: pass an
// Idempotency-Key there to make a POST retryable. Errors are those of
// [Client.GetJSON].
func (c *Client) DoJSON(ctx context.Context, method, url string, in, out any, header http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("integrations: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("integrations: %w", err)
	}
	for k, v := range header {
		req.Header[k] = slices.Clone(v)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if in != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, attempts, err := c.do(req)
	if err != nil {
		return err
	}
	defer discard(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ra, _ := retryAfter(resp)
		return newStatusError(c.Key(req), attempts, resp, ra, ErrUnexpectedStatus)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes))
	if err := dec.Decode(out); err != nil && err != io.EOF {
		return fmt.Errorf("integrations: decode %s %s response: %w", method, req.URL.Redacted(), err)
	}
	return nil
}
