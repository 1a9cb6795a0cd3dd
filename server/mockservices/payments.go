package mockservices

import (
	"net/http"
	"time"
)

// Subscription is a subscription of the mock payment service; it is the
// data of its subscription.* events.
type Subscription struct {
	ID     string `json:"id"`
	Plan   string `json:"plan"`
	Status string `json:"status"`
	// UnpaidSince is the time of the first failed payment since the last
	// successful one.
	UnpaidSince *time.Time `json:"unpaid_since"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Payment is a payment of a subscription; it is the data of the
// payment.* events, with the subscription's state after it.
type Payment struct {
	ID           string     `json:"id"`
	Subscription string     `json:"subscription"`
	Status       string     `json:"status"`
	Plan         string     `json:"plan"`
	UnpaidSince  *time.Time `json:"unpaid_since"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Subscription statuses.
var subscriptionStatuses = map[string]bool{"active": true, "trialing": true, "past_due": true, "unpaid": true, "canceled": true}

// PaymentService is the mock external billing service. It is an
// http.Handler safe for concurrent use.
type PaymentService struct {
	*base
	subs     map[string]*Subscription
	payments map[string]*Payment
}

// NewPaymentService returns a payment service with no subscriptions. It
// fails only on a bad Webhook.Secret ([ErrBadSecret]).
func NewPaymentService(cfg Config) (*PaymentService, error) {
	b, err := newBase("payment-service", cfg)
	if err != nil {
		return nil, err
	}
	s := &PaymentService{base: b, subs: map[string]*Subscription{}, payments: map[string]*Payment{}}
	b.api.HandleFunc("GET /v1/subscriptions", s.list)
	b.api.HandleFunc("POST /v1/subscriptions", s.create)
	b.api.HandleFunc("GET /v1/subscriptions/{id}", s.get)
	b.api.HandleFunc("PATCH /v1/subscriptions/{id}", s.update)
	b.api.HandleFunc("POST /v1/subscriptions/{id}/cancel", s.cancel)
	b.api.HandleFunc("GET /v1/payments", s.listPayments)
	b.api.HandleFunc("POST /v1/payments", s.pay)
	return s, nil
}

// SubscriptionInput creates or changes a subscription; nil fields are left
// as they are (on create: plan "free", status "active").
type SubscriptionInput struct {
	Plan   *string `json:"plan,omitempty"`
	Status *string `json:"status,omitempty"`
}

// PaymentInput records a payment of a subscription.
type PaymentInput struct {
	Subscription string `json:"subscription"`
	// Status is "succeeded" or "failed".
	Status string `json:"status"`
}

func (s *PaymentService) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := paginate(r, s.subs)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "limit must be between 1 and 100")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *PaymentService) listPayments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := paginate(r, s.payments)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "limit must be between 1 and 100")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *PaymentService) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sub, ok := s.subs[r.PathValue("id")]
	var out Subscription
	if ok {
		out = *sub
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no such subscription")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func applySubscription(sub *Subscription, in SubscriptionInput) string {
	if in.Plan != nil {
		if *in.Plan == "" {
			return "plan must not be empty"
		}
		sub.Plan = *in.Plan
	}
	if in.Status != nil {
		if !subscriptionStatuses[*in.Status] {
			return "status must be active, trialing, past_due, unpaid or canceled"
		}
		sub.Status = *in.Status
	}
	return ""
}

func (s *PaymentService) create(w http.ResponseWriter, r *http.Request) {
	var in SubscriptionInput
	if !decode(w, r, &in) {
		return
	}
	sub := &Subscription{Plan: "free", Status: "active"}
	if msg := applySubscription(sub, in); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	s.mu.Lock()
	sub.ID = s.nextID("sub")
	sub.CreatedAt = s.stamp()
	sub.UpdatedAt = sub.CreatedAt
	s.subs[sub.ID] = sub
	out := *sub
	s.mu.Unlock()
	s.sender.send(r.Context(), "subscription.created", out)
	writeJSON(w, http.StatusCreated, out)
}

// change applies f to a subscription under the lock and sends typ.
func (s *PaymentService) change(w http.ResponseWriter, r *http.Request, typ string, f func(*Subscription) string) {
	s.mu.Lock()
	sub, ok := s.subs[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "no such subscription")
		return
	}
	next := *sub
	if msg := f(&next); msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	next.UpdatedAt = s.stamp()
	*sub = next
	s.mu.Unlock()
	s.sender.send(r.Context(), typ, next)
	writeJSON(w, http.StatusOK, next)
}

func (s *PaymentService) update(w http.ResponseWriter, r *http.Request) {
	var in SubscriptionInput
	if !decode(w, r, &in) {
		return
	}
	s.change(w, r, "subscription.updated", func(sub *Subscription) string { return applySubscription(sub, in) })
}

func (s *PaymentService) cancel(w http.ResponseWriter, r *http.Request) {
	s.change(w, r, "subscription.canceled", func(sub *Subscription) string {
		if sub.Status == "canceled" {
			return "subscription is already canceled"
		}
		sub.Status = "canceled"
		return ""
	})
}

func (s *PaymentService) pay(w http.ResponseWriter, r *http.Request) {
	var in PaymentInput
	if !decode(w, r, &in) {
		return
	}
	if in.Status != "succeeded" && in.Status != "failed" {
		writeError(w, http.StatusUnprocessableEntity, "status must be succeeded or failed")
		return
	}
	s.mu.Lock()
	sub, ok := s.subs[in.Subscription]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "no such subscription")
		return
	}
	now := s.stamp()
	if in.Status == "succeeded" {
		sub.UnpaidSince = nil
		if sub.Status == "past_due" || sub.Status == "unpaid" {
			sub.Status = "active"
		}
	} else {
		if sub.UnpaidSince == nil {
			t := now
			sub.UnpaidSince = &t
		}
		if sub.Status == "active" || sub.Status == "trialing" {
			sub.Status = "past_due"
		}
	}
	sub.UpdatedAt = now
	p := &Payment{ID: s.nextID("pay"), Subscription: sub.ID, Status: in.Status, Plan: sub.Plan,
		UnpaidSince: sub.UnpaidSince, CreatedAt: now, UpdatedAt: now}
	s.payments[p.ID] = p
	out := *p
	s.mu.Unlock()
	s.sender.send(r.Context(), "payment."+in.Status, out)
	writeJSON(w, http.StatusCreated, out)
}

// Subscriptions returns every subscription, by id.
func (s *PaymentService) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, *sub)
	}
	return sortByID(out, func(s Subscription) string { return s.ID })
}
