package tenancy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidSlug means a tenant slug does not have the form [ValidSlug]
// requires.
var ErrInvalidSlug = errors.New("tenancy: invalid slug")

// Slug length limits: a slug is also a DNS label for [SubdomainResolver].
const (
	MinSlugLen = 2
	MaxSlugLen = 63
)

// ValidSlug reports whether s is a valid tenant slug: 2 to 63 lowercase ASCII
// letters, digits and hyphens, not starting or ending with a hyphen. The error
// wraps [ErrInvalidSlug].
func ValidSlug(s string) error {
	if len(s) < MinSlugLen || len(s) > MaxSlugLen {
		return fmt.Errorf("%w: %q must be %d to %d characters", ErrInvalidSlug, s, MinSlugLen, MaxSlugLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: %q may hold only lowercase letters, digits and hyphens", ErrInvalidSlug, s)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fmt.Errorf("%w: %q must not start or end with a hyphen", ErrInvalidSlug, s)
	}
	return nil
}

// Slugify derives a slug from a display name: ASCII letters are lowercased,
// digits kept, every other run of characters becomes one hyphen, hyphens are
// trimmed from both ends and the result is cut to 63 bytes. The result may
// still be too short (for a name of one letter, or of non-ASCII letters only),
// so check it with [ValidSlug].
func Slugify(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	hyphen := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			fallthrough
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteByte(c)
		default:
			hyphen = true
		}
		if b.Len() >= MaxSlugLen {
			break
		}
	}
	s := b.String()
	if len(s) > MaxSlugLen {
		s = s[:MaxSlugLen]
	}
	return strings.Trim(s, "-")
}
