package integrations

import "time"

// ParseRetryAfter exposes parseRetryAfter to the external tests.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) { return parseRetryAfter(v, now) }

// BreakerDecision runs the breaker's allow path for key and reports a
// success, as one attempt does.
func (c *Client) BreakerDecision(key string) error {
	done, err := c.endpoint(key).cb.Allow()
	if err != nil {
		return err
	}
	done(nil)
	return nil
}
