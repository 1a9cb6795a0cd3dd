package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// Errors of the server's own logic, mapped to HTTP statuses by [toAPIError].
var (
	ErrNotFound     = errors.New("server: not found")
	ErrConflict     = errors.New("server: conflict")
	ErrLastOwner    = errors.New("server: a tenant must keep at least one owner")
	ErrInvalidInput = errors.New("server: invalid input")
)

// fieldError is a validation error located at one input field.
type fieldError struct {
	location, message string
	value             any
}

func (e *fieldError) Error() string { return e.location + ": " + e.message }

// ErrorDetail lets huma render the location and value.
func (e *fieldError) ErrorDetail() *huma.ErrorDetail {
	return &huma.ErrorDetail{Location: e.location, Message: e.message, Value: e.value}
}

func invalid(location, message string, value any) error {
	return huma.Error422UnprocessableEntity("validation failed", &fieldError{location, message, value})
}

var bearerChallenge = http.Header{"WWW-Authenticate": {`Bearer realm="saaskit"`}}

// toAPIError is the one table that maps domain errors to HTTP problems.
// Anything it does not know is an internal error: logged with the request id
// and answered as "internal error".
func (s *Server) toAPIError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		return huma.ErrorWithHeaders(huma.Error401Unauthorized("invalid email or password"), bearerChallenge)
	case errors.Is(err, authn.ErrUnauthenticated),
		errors.Is(err, authn.ErrRefreshInvalid),
		errors.Is(err, authn.ErrRefreshExpired),
		errors.Is(err, authn.ErrRefreshRevoked),
		errors.Is(err, authn.ErrRefreshReuse):
		return huma.ErrorWithHeaders(huma.Error401Unauthorized(publicMessage(err)), bearerChallenge)
	case errors.Is(err, authn.ErrForbidden):
		return huma.Error403Forbidden("your role does not allow this")
	case errors.Is(err, tenancy.ErrTenantSuspended):
		return huma.Error403Forbidden("the tenant is suspended")
	case errors.Is(err, ErrNotFound), errors.Is(err, tenancy.ErrTenantNotFound):
		return huma.Error404NotFound("not found")
	case errors.Is(err, ErrConflict), errors.Is(err, tenancy.ErrSlugTaken):
		return huma.Error409Conflict(publicMessage(err))
	case errors.Is(err, ErrLastOwner):
		return huma.Error409Conflict("a tenant must keep at least one owner")
	case errors.Is(err, tenancy.ErrNoTenant):
		return huma.Error400BadRequest("no tenant: the token carries no tenant")
	case errors.Is(err, tenancy.ErrUnscoped):
		// A query that escaped tenant scoping is a bug: fall through to 500.
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return huma.NewError(499, "request canceled")
	}
	s.log.ErrorContext(ctx, "internal error", slog.String("request_id", RequestIDFromContext(ctx)), slog.Any("error", err))
	return huma.Error500InternalServerError("internal error")
}

// publicMessage strips the package prefix of a sentinel's message.
func publicMessage(err error) string {
	msg := err.Error()
	for i := 0; i+1 < len(msg); i++ {
		if msg[i] == ':' && msg[i+1] == ' ' {
			return msg[i+2:]
		}
	}
	return msg
}
