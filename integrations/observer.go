package integrations

import "time"

// Observer receives what the [Client] does, for health checks, metrics and
// logs. Methods are called synchronously on the goroutine that made the
// request, so they must be quick and safe for concurrent use.
//
// OnStateChange is called while the key's breaker holds its lock: it must not
// call [Client.State] or [Client.Counts] for the same key, nor make a request
// through the client with that key.
type Observer interface {
	// OnAttempt is called after every attempt, including attempts that the
	// breaker refused (Err wraps [ErrCircuitOpen], Duration is zero).
	OnAttempt(AttemptInfo)
	// OnStateChange is called when the breaker of key changes state.
	OnStateChange(key string, from, to State)
}

// AttemptInfo describes one attempt of a request.
type AttemptInfo struct {
	// Key is the breaker and rate-limit key of the request.
	Key string
	// Method is the request method.
	Method string
	// Host and Path are taken from the request URL; the query is left out
	// because it may carry secrets.
	Host, Path string
	// Attempt counts from 1.
	Attempt int
	// StatusCode is the response status, or 0 when there was no response.
	StatusCode int
	// Err is the attempt's error, or nil when a response arrived.
	Err error
	// Duration is the time from sending the request to receiving the
	// response headers (or the error).
	Duration time.Duration
	// Retried reports whether the client will make another attempt.
	Retried bool
	// Wait is the time the client waits before that next attempt.
	Wait time.Duration
}

// ObserverFuncs adapts functions to an [Observer]; nil fields are skipped.
type ObserverFuncs struct {
	// Attempt, when set, is called by OnAttempt.
	Attempt func(AttemptInfo)
	// StateChange, when set, is called by OnStateChange.
	StateChange func(key string, from, to State)
}

var _ Observer = ObserverFuncs{}

// OnAttempt calls f.Attempt if it is set.
func (f ObserverFuncs) OnAttempt(info AttemptInfo) {
	if f.Attempt != nil {
		f.Attempt(info)
	}
}

// OnStateChange calls f.StateChange if it is set.
func (f ObserverFuncs) OnStateChange(key string, from, to State) {
	if f.StateChange != nil {
		f.StateChange(key, from, to)
	}
}
