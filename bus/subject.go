package bus

import (
	"errors"
	"fmt"
	"strings"
)

const (
	// SubjectRoot is the subject prefix of every event message.
	SubjectRoot = "koers.events"
	// AllEvents is the filter matching every event message; the event
	// stream listens on it.
	AllEvents = SubjectRoot + ".>"

	// absentToken stands for a tenant the metadata does not name and for
	// the id of a stream name that has no '-'.
	absentToken = "_"
	// emptyToken stands for an empty category or id ("-x", "case-").
	emptyToken = "%"
	escapeByte = '%'
)

// ErrBadSubject is wrapped by ParseSubject's errors for subjects that are not
// event subjects.
var ErrBadSubject = errors.New("bus: not an event subject")

// Subject returns the subject an event of stream, owned by tenant, is
// published on: koers.events.<tenant>.<category>.<id>. An empty tenant gives
// the token "_".
func Subject(tenant, stream string) string {
	category, id, hasID := strings.Cut(stream, "-")
	idToken := absentToken
	if hasID {
		idToken = escapeToken(id)
	}
	return SubjectRoot + "." + TenantToken(tenant) + "." + escapeToken(category) + "." + idToken
}

// TenantFilter returns the subject filter matching every event of tenant.
func TenantFilter(tenant string) string {
	return SubjectRoot + "." + TenantToken(tenant) + ".>"
}

// CategoryFilter returns the subject filter matching every event of tenant
// in streams of category, for example all of its "case" streams.
func CategoryFilter(tenant, category string) string {
	return SubjectRoot + "." + TenantToken(tenant) + "." + escapeToken(category) + ".*"
}

// StreamFilter returns the subject filter matching every event of one
// stream of tenant. A stream maps to exactly one subject, so the filter is
// that subject.
func StreamFilter(tenant, stream string) string {
	return Subject(tenant, stream)
}

// TenantToken returns the subject token for tenant: "_" when tenant is
// empty, otherwise the tenant escaped as the package doc describes. It is
// also the value of the Koers-Tenant header.
func TenantToken(tenant string) string {
	if tenant == "" {
		return absentToken
	}
	return escapeToken(tenant)
}

// ParseSubject reads tenant and stream back from an event subject; it
// undoes Subject. A tenant token "_" gives the empty tenant.
func ParseSubject(subject string) (tenant, stream string, err error) {
	rest, ok := strings.CutPrefix(subject, SubjectRoot+".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q does not start with %q", ErrBadSubject, subject, SubjectRoot+".")
	}
	tokens := strings.Split(rest, ".")
	if len(tokens) != 3 {
		return "", "", fmt.Errorf("%w: %q has %d tokens after %q, want 3", ErrBadSubject, subject, len(tokens), SubjectRoot)
	}
	if tokens[0] != absentToken {
		if tenant, err = unescapeToken(tokens[0]); err != nil {
			return "", "", fmt.Errorf("%w: %q: tenant: %v", ErrBadSubject, subject, err)
		}
	}
	category, err := unescapeToken(tokens[1])
	if err != nil {
		return "", "", fmt.Errorf("%w: %q: category: %v", ErrBadSubject, subject, err)
	}
	if strings.Contains(category, "-") {
		// Subject splits at the first '-', so a category never holds one.
		return "", "", fmt.Errorf("%w: %q: category %q holds a '-'", ErrBadSubject, subject, category)
	}
	if tokens[2] == absentToken {
		return tenant, category, nil
	}
	id, err := unescapeToken(tokens[2])
	if err != nil {
		return "", "", fmt.Errorf("%w: %q: id: %v", ErrBadSubject, subject, err)
	}
	return tenant, category + "-" + id, nil
}

// escapeToken makes s a valid, reversible subject token.
func escapeToken(s string) string {
	switch s {
	case "":
		return emptyToken
	case absentToken:
		return "%5F"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escapeByte)
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

// safeByte reports whether c may stand for itself in a token: printable
// ASCII other than the subject separator, the wildcards and the escape.
func safeByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>' && c != escapeByte
}

func unescapeToken(t string) (string, error) {
	if t == emptyToken {
		return "", nil
	}
	if t == "" {
		return "", errors.New("empty token")
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != escapeByte {
			if !safeByte(c) {
				return "", fmt.Errorf("byte 0x%02x at %d must be escaped", c, i)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("escape at %d is cut short", i)
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("escape %q at %d is not two upper-case hex digits", t[i:i+3], i)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	v := b.String()
	if escapeToken(v) != t {
		// One value, one token: a byte escaped that need not be would let
		// two subjects name the same stream and slip past filters.
		return "", fmt.Errorf("token %q is not in canonical form %q", t, escapeToken(v))
	}
	return v, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
