package mockservices

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrBadSecret is returned for a webhook secret that is not "whsec_"
// followed by base64.
var ErrBadSecret = errors.New("mockservices: webhook secret must be whsec_ followed by base64")

// Webhook says where and how a service sends its webhooks.
type Webhook struct {
	// URL is the platform's endpoint for the connection, for example
	// http://localhost:8080/api/integrations/webhooks/user-service/{connection id}/.
	// Empty means webhooks are not sent (they are still recorded).
	URL string
	// Secret is the connection's Standard Webhooks signing secret
	// ("whsec_..."), as the platform showed it when the connection was
	// created.
	Secret string
}

// Delivery is the record of one webhook.
type Delivery struct {
	// EventID and Type are the event's id and type.
	EventID, Type string
	// Body is the signed body.
	Body []byte
	// Dropped reports that a fault kept it from being sent.
	Dropped bool
	// Status is the platform's answer, or 0 when it was not sent or the
	// request failed (Err).
	Status int
	// Err is the error of the request, if any.
	Err error
}

// Sender posts signed webhooks to the platform: each event once, signed
// with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)
// and recorded in [Sender.Deliveries]. It is safe for concurrent use.
type Sender struct {
	hook   Webhook
	secret []byte
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	faults *faultState

	mu         sync.Mutex
	deliveries []Delivery
}

func newSender(cfg *Config, faults *faultState) (*Sender, error) {
	s := &Sender{hook: cfg.Webhook, client: cfg.HTTPClient, now: cfg.Now, log: cfg.Logger, faults: faults}
	if cfg.Webhook.Secret != "" {
		b, err := decodeSecret(cfg.Webhook.Secret)
		if err != nil {
			return nil, err
		}
		s.secret = b
	}
	return s, nil
}

func decodeSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, ErrBadSecret
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) == 0 {
		return nil, ErrBadSecret
	}
	return b, nil
}

// Sign returns the Standard Webhooks headers of body sent as event id at
// time at, signed with secret ("whsec_..."). The server's verifier
// (webhooks.StandardWebhooks) accepts them.
func Sign(secret, id string, body []byte, at time.Time) (http.Header, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, err
	}
	return sign(key, id, body, at), nil
}

func sign(key []byte, id string, body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/json")
	return h
}

// send builds, signs and posts one event; the result is recorded.
func (s *Sender) send(ctx context.Context, typ string, data any) Delivery {
	at := s.now()
	id := "evt_" + s.faults.hex(12)
	body, err := json.Marshal(map[string]any{"id": id, "type": typ, "timestamp": at.UTC().Format(time.RFC3339Nano), "data": data})
	d := Delivery{EventID: id, Type: typ, Body: body, Err: err}
	switch {
	case err != nil:
	case s.faults.dropWebhook():
		d.Dropped = true
	case s.hook.URL == "":
	case s.secret == nil:
		d.Err = ErrBadSecret
	default:
		d.Status, d.Err = s.post(ctx, id, body, at)
	}
	if d.Err != nil {
		s.log.Warn("webhook not delivered", slog.String("event_id", id), slog.String("type", typ), slog.Any("error", d.Err))
	} else {
		s.log.Info("webhook", slog.String("event_id", id), slog.String("type", typ),
			slog.Bool("dropped", d.Dropped), slog.Int("status", d.Status))
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	return d
}

func (s *Sender) post(ctx context.Context, id string, body []byte, at time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = sign(s.secret, id, body, at)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // drained for reuse
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("mockservices: webhook answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Deliveries returns the webhooks sent or dropped so far, oldest first.
func (s *Sender) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}
