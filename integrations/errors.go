package integrations

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by [Client.Do] and the JSON helpers, alone or inside a
// [*StatusError] or [*TransportError]; test with errors.Is.
var (
	// ErrCircuitOpen means the circuit breaker of the request's key is open
	// (or half-open with its probe budget spent): the request was refused at
	// once without reaching the upstream.
	ErrCircuitOpen = errors.New("integrations: circuit open")
	// ErrRetriesExhausted means every allowed attempt failed with a
	// retryable status or network error.
	ErrRetriesExhausted = errors.New("integrations: retries exhausted")
	// ErrRetryAfterTooLong means the upstream asked, with Retry-After, for a
	// wait longer than Config.MaxRetryAfter, so the client stopped retrying.
	ErrRetryAfterTooLong = errors.New("integrations: retry-after beyond limit")
	// ErrRetryPastDeadline means the wait before the next attempt would
	// outlive the caller's context deadline, so no retry was started.
	ErrRetryPastDeadline = errors.New("integrations: retry would outlive the context deadline")
	// ErrRateLimited means the client-side rate limit for the key could not
	// grant a request before the context's deadline.
	ErrRateLimited = errors.New("integrations: client-side rate limit")
	// ErrUnexpectedStatus means a JSON helper received a status outside 2xx
	// that was not retried or was not retryable.
	ErrUnexpectedStatus = errors.New("integrations: unexpected status")
)

// bodySnippetLen bounds [StatusError.Body].
const bodySnippetLen = 1024

// StatusError reports a request whose last attempt got an HTTP status the
// client gave up on. It wraps Reason: [ErrRetriesExhausted],
// [ErrRetryAfterTooLong], [ErrRetryPastDeadline] or [ErrUnexpectedStatus].
type StatusError struct {
	// Key is the breaker and rate-limit key of the request.
	Key string
	// StatusCode is the status of the last attempt.
	StatusCode int
	// Attempts is the number of attempts sent.
	Attempts int
	// RetryAfter is the wait the last response asked for with Retry-After,
	// or zero.
	RetryAfter time.Duration
	// Body holds the first bytes (at most 1 KiB) of the last response body.
	Body []byte
	// Reason is the sentinel error saying why the client stopped.
	Reason error
}

// Error returns a message such as
// "integrations: retries exhausted: api.example.com: status 503 after 3 attempts".
func (e *StatusError) Error() string {
	reason := "integrations: request failed"
	if e.Reason != nil {
		reason = e.Reason.Error()
	}
	return fmt.Sprintf("%s: %s: status %d after %s", reason, e.Key, e.StatusCode, attempts(e.Attempts))
}

// Unwrap returns Reason.
func (e *StatusError) Unwrap() error { return e.Reason }

// TransportError reports a request whose last attempt failed without a
// response: a network error, an attempt timeout or the caller's context
// ending. It wraps both Err and Reason, so errors.Is finds
// context.DeadlineExceeded as well as [ErrRetriesExhausted].
type TransportError struct {
	// Key is the breaker and rate-limit key of the request.
	Key string
	// Attempts is the number of attempts sent.
	Attempts int
	// Err is the error of the last attempt (or the context's error when the
	// caller gave up while the client was waiting to retry).
	Err error
	// Reason is [ErrRetriesExhausted] or [ErrRetryPastDeadline] when the
	// client stopped retrying, nil when the error was not retryable.
	Reason error
}

// Error returns a message such as
// "integrations: retries exhausted: api.example.com: 3 attempts: EOF".
func (e *TransportError) Error() string {
	var b strings.Builder
	if e.Reason != nil {
		b.WriteString(e.Reason.Error())
	} else {
		b.WriteString("integrations: request failed")
	}
	fmt.Fprintf(&b, ": %s: %s: %v", e.Key, attempts(e.Attempts), e.Err)
	return b.String()
}

// Unwrap returns Reason (when set) and Err.
func (e *TransportError) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Reason, e.Err}
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
