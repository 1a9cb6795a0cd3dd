package mockservices

import (
	"net/http"
	"net/mail"
	"strings"
	"time"
)

// User is a user of the mock user service; it is the data of its
// user.* events.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	FullName  string    `json:"full_name"`
	Role      string    `json:"role"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UserService is the mock external user directory. It is an
// http.Handler safe for concurrent use.
type UserService struct {
	*base
	users map[string]*User
}

// NewUserService returns a user service with no users. It fails only on a
// bad Webhook.Secret ([ErrBadSecret]).
func NewUserService(cfg Config) (*UserService, error) {
	b, err := newBase("user-service", cfg)
	if err != nil {
		return nil, err
	}
	s := &UserService{base: b, users: map[string]*User{}}
	b.api.HandleFunc("GET /v1/users", s.list)
	b.api.HandleFunc("POST /v1/users", s.create)
	b.api.HandleFunc("GET /v1/users/{id}", s.get)
	b.api.HandleFunc("PATCH /v1/users/{id}", s.update)
	b.api.HandleFunc("DELETE /v1/users/{id}", s.delete)
	return s, nil
}

// UserInput is the body that creates or changes a user; nil fields are
// left as they are (on create: role "user", active true).
type UserInput struct {
	Email    *string `json:"email,omitempty"`
	FullName *string `json:"full_name,omitempty"`
	Role     *string `json:"role,omitempty"`
	Active   *bool   `json:"active,omitempty"`
}

func (s *UserService) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := paginate(r, s.users)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "limit must be between 1 and 100")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *UserService) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	var out User
	if ok {
		out = *u
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// apply checks in and applies it to u.
func applyUser(u *User, in UserInput) string {
	if in.Email != nil {
		a, err := mail.ParseAddress(*in.Email)
		if err != nil || a.Address != strings.TrimSpace(*in.Email) {
			return "email is not a valid address"
		}
		u.Email = strings.ToLower(a.Address)
	}
	if in.FullName != nil {
		u.FullName = *in.FullName
	}
	if in.Role != nil {
		if *in.Role != "user" && *in.Role != "admin" {
			return "role must be user or admin"
		}
		u.Role = *in.Role
	}
	if in.Active != nil {
		u.Active = *in.Active
	}
	return ""
}

func (s *UserService) create(w http.ResponseWriter, r *http.Request) {
	var in UserInput
	if !decode(w, r, &in) {
		return
	}
	if in.Email == nil {
		writeError(w, http.StatusUnprocessableEntity, "email is required")
		return
	}
	u := &User{Role: "user", Active: true}
	if msg := applyUser(u, in); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	s.mu.Lock()
	for _, o := range s.users {
		if o.Email == u.Email {
			s.mu.Unlock()
			writeError(w, http.StatusConflict, "email already taken")
			return
		}
	}
	u.ID = s.nextID("usr")
	u.CreatedAt = s.stamp()
	u.UpdatedAt = u.CreatedAt
	s.users[u.ID] = u
	out := *u
	s.mu.Unlock()
	s.sender.send(r.Context(), "user.created", out)
	writeJSON(w, http.StatusCreated, out)
}

func (s *UserService) update(w http.ResponseWriter, r *http.Request) {
	var in UserInput
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	next := *u
	if msg := applyUser(&next, in); msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	next.UpdatedAt = s.stamp()
	*u = next
	s.mu.Unlock()
	s.sender.send(r.Context(), "user.updated", next)
	writeJSON(w, http.StatusOK, next)
}

func (s *UserService) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	delete(s.users, u.ID)
	out := *u
	out.UpdatedAt = s.stamp()
	s.mu.Unlock()
	s.sender.send(r.Context(), "user.deleted", out)
	w.WriteHeader(http.StatusNoContent)
}

// Users returns every user, by id.
func (s *UserService) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	return sortByID(out, func(u User) string { return u.ID })
}
