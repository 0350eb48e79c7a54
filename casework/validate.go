package casework

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Limits of command fields.
const (
	// MaxSubjectIDLength caps client and coach IDs, in characters.
	MaxSubjectIDLength = 128
	// MaxTokenIDLength caps organisation and agency IDs, which name NATS
	// subject tokens like tenant IDs do.
	MaxTokenIDLength = 63
	// MaxDepartmentLength caps a department's name, in characters.
	MaxDepartmentLength = 100
	// MaxKeyIDLength caps a Sealed value's key ID, in bytes.
	MaxKeyIDLength = 128
	// MaxSealedBytes caps a Sealed value's ciphertext: 64 KiB is pages of
	// notes, and keeps every event far below the store's append limit.
	MaxSealedBytes = 64 << 10
	// sealedNonceBytes and sealedTagBytes are AES-256-GCM's sizes.
	sealedNonceBytes = 12
	sealedTagBytes   = 16
)

// violations collects what is wrong with a command, field by field.
type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// date checks a day that must be given.
func (v *violations) date(field string, d Date) {
	if d.IsZero() {
		v.add(field, "required")
		return
	}
	v.optionalDate(field, d)
}

// optionalDate checks a day that may be left zero.
func (v *violations) optionalDate(field string, d Date) {
	if !d.IsZero() && !d.IsValid() {
		v.add(field, "%s is not a calendar date between %d and %d", d, minYear, maxYear)
	}
}

// notBefore checks that day later is not before day earlier, when both are
// given.
func (v *violations) notBefore(field string, later Date, earlierField string, earlier Date) {
	if later.IsValid() && earlier.IsValid() && later.Before(earlier) {
		v.add(field, "must not be before %s (%s)", earlierField, earlier)
	}
}

// enum checks a value that must be one of its enum's named values, not the
// unspecified zero.
func (v *violations) enum(field string, e protoreflect.Enum) {
	switch {
	case e.Number() == 0:
		v.add(field, "required")
	case !known(e):
		v.add(field, "unknown value %d", e.Number())
	}
}

// optionalEnum checks a value that may be the unspecified zero.
func (v *violations) optionalEnum(field string, e protoreflect.Enum) {
	if e.Number() != 0 {
		v.enum(field, e)
	}
}

func known(e protoreflect.Enum) bool {
	return e.Descriptor().Values().ByNumber(e.Number()) != nil
}

// enumList checks a list of enum values: each named and specified, none
// repeated, and at least one when required.
func enumList[E interface {
	protoreflect.Enum
	comparable
	String() string
}](v *violations, field string, list []E, required bool) {
	if required && len(list) == 0 {
		v.add(field, "at least one value required")
	}
	seen := make(map[E]bool, len(list))
	for i, e := range list {
		item := fmt.Sprintf("%s[%d]", field, i)
		v.enum(item, e)
		if seen[e] {
			v.add(item, "repeats %s", e.String())
		}
		seen[e] = true
	}
}

// intRange checks lo <= n <= hi.
func (v *violations) intRange(field string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(field, "%d is outside %d to %d", n, lo, hi)
	}
}

// subjectID checks an opaque ID such as a coach's subject: printable, no
// spaces, at most MaxSubjectIDLength characters.
func (v *violations) subjectID(field, id string, required bool) {
	switch {
	case id == "":
		if required {
			v.add(field, "required")
		}
	case !utf8.ValidString(id):
		v.add(field, "not valid UTF-8")
	case utf8.RuneCountInString(id) > MaxSubjectIDLength:
		v.add(field, "longer than %d characters", MaxSubjectIDLength)
	case !allRunes(id, func(r rune) bool { return unicode.IsPrint(r) && !unicode.IsSpace(r) }):
		v.add(field, "must be printable without spaces")
	}
}

// tokenID checks an organisation or agency ID: lower-case letters, digits
// and hyphens, 1 to MaxTokenIDLength characters, as a NATS subject token.
func (v *violations) tokenID(field, id string, required bool) {
	switch {
	case id == "":
		if required {
			v.add(field, "required")
		}
	case len(id) > MaxTokenIDLength:
		v.add(field, "longer than %d characters", MaxTokenIDLength)
	case !allRunes(id, isTokenRune):
		v.add(field, "only lower-case letters, digits and hyphens")
	}
}

func isTokenRune(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-'
}

// text checks a short free text that is not personal: valid UTF-8, no
// control characters, at most max characters.
func (v *violations) text(field, s string, max int) {
	switch {
	case !utf8.ValidString(s):
		v.add(field, "not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		v.add(field, "longer than %d characters", max)
	case !allRunes(s, func(r rune) bool { return !unicode.IsControl(r) }):
		v.add(field, "must not contain control characters")
	}
}

// sealed checks the shape of encrypted personal data: a key ID, an
// AES-256-GCM nonce and a ciphertext with its tag, within MaxSealedBytes.
// The domain cannot decrypt it and does not try.
func (v *violations) sealed(field string, s *eventv1.Sealed, required bool) {
	if s == nil {
		if required {
			v.add(field, "required")
		}
		return
	}
	switch id := s.GetKeyId(); {
	case id == "":
		v.add(field+".key_id", "required")
	case len(id) > MaxKeyIDLength:
		v.add(field+".key_id", "longer than %d bytes", MaxKeyIDLength)
	}
	if n := len(s.GetNonce()); n != sealedNonceBytes {
		v.add(field+".nonce", "is %d bytes, must be %d", n, sealedNonceBytes)
	}
	switch n := len(s.GetCiphertext()); {
	case n < sealedTagBytes:
		v.add(field+".ciphertext", "is %d bytes, shorter than the %d-byte tag", n, sealedTagBytes)
	case n > MaxSealedBytes:
		v.add(field+".ciphertext", "is %d bytes, over the limit of %d", n, MaxSealedBytes)
	}
}

func allRunes(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}
