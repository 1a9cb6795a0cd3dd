package authn

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Errors returned by [PasswordPolicy.Validate] and [ValidatePassword].
var (
	// ErrPasswordTooShort means the password has fewer characters than the
	// policy's minimum.
	ErrPasswordTooShort = errors.New("authn: password too short")
	// ErrPasswordTooLong means the password has more bytes than the policy's
	// maximum.
	ErrPasswordTooLong = errors.New("authn: password too long")
	// ErrPasswordTooCommon means the password is on the list of the most
	// common passwords.
	ErrPasswordTooCommon = errors.New("authn: password too common")
)

// Password policy defaults.
const (
	DefaultMinPasswordLength = 10
	DefaultMaxPasswordBytes  = 256
)

// PasswordPolicy says which new passwords are acceptable. Its zero value is
// the default policy: at least [DefaultMinPasswordLength] characters, at most
// [DefaultMaxPasswordBytes] bytes, and not one of the most common passwords
// (compared case-insensitively against a list embedded in the package).
//
// Following NIST SP 800-63B, it imposes no composition rules (digits,
// symbols): length and a block list do more for strength.
type PasswordPolicy struct {
	// MinLength is the minimum number of characters (Unicode code points);
	// default DefaultMinPasswordLength.
	MinLength int
	// MaxBytes is the maximum length in bytes; default DefaultMaxPasswordBytes.
	MaxBytes int
	// AllowCommon turns off the common-password check.
	AllowCommon bool
}

// Validate returns nil if pw is acceptable, or an error wrapping
// [ErrPasswordTooShort], [ErrPasswordTooLong] or [ErrPasswordTooCommon].
func (p PasswordPolicy) Validate(pw string) error {
	minLen := p.MinLength
	if minLen <= 0 {
		minLen = DefaultMinPasswordLength
	}
	maxBytes := p.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxPasswordBytes
	}
	if len(pw) > maxBytes {
		return fmt.Errorf("%w: at most %d bytes", ErrPasswordTooLong, maxBytes)
	}
	if utf8.RuneCountInString(pw) < minLen {
		return fmt.Errorf("%w: at least %d characters", ErrPasswordTooShort, minLen)
	}
	if !p.AllowCommon && IsCommonPassword(pw) {
		return ErrPasswordTooCommon
	}
	return nil
}

// ValidatePassword checks pw against the default [PasswordPolicy].
func ValidatePassword(pw string) error { return PasswordPolicy{}.Validate(pw) }

//go:embed common_passwords.txt
var commonPasswordsText string

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 1500)
	for line := range strings.Lines(commonPasswordsText) {
		if w := strings.TrimSpace(line); w != "" {
			m[w] = struct{}{}
		}
	}
	return m
})

// IsCommonPassword reports whether pw, lower-cased, is on the embedded list of
// common passwords. Every entry on the list is at least
// DefaultMinPasswordLength characters long: shorter ones fail the length check
// anyway.
func IsCommonPassword(pw string) bool {
	_, ok := commonPasswords()[strings.ToLower(pw)]
	return ok
}
