package casework

import (
	"google.golang.org/protobuf/proto"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Command is one use of a case: OpenCase, RecordSession, CloseCase, … Only
// this package's command types implement it.
type Command interface {
	// Validate checks the command's own fields, without looking at the
	// case, and returns what is wrong; nil when nothing is.
	Validate() []FieldViolation
	// decide applies the case's rules to the command; Decide has already
	// validated it and checked the case's lifecycle.
	decide(s State) ([]proto.Message, error)
}

// Decide answers a command with the events that record it, given the case's
// current state. It fails with a *ValidationError when the command's fields
// are wrong, and with an error wrapping one of the package's *Error values
// when the case's state forbids the command; then there are no events.
// Decide never returns zero events without an error.
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if v := cmd.Validate(); len(v) > 0 {
		return nil, &ValidationError{Violations: v}
	}
	if err := admit(s, cmd); err != nil {
		return nil, err
	}
	return cmd.decide(s)
}

// admit enforces the lifecycle every command shares: nothing before the
// opening, one opening, nothing after erasure, and only reopening and
// erasure while closed.
func admit(s State, cmd Command) error {
	_, opening := cmd.(interface{ opensCase() })
	_, acceptedWhenClosed := cmd.(interface{ acceptedWhenClosed() })
	switch {
	case opening && s.Stage != casev1.Stage_STAGE_UNSPECIFIED:
		return refuse(ErrCaseAlreadyOpened, "opened on %s", s.OpenedOn)
	case opening:
		return nil
	case s.Stage == casev1.Stage_STAGE_UNSPECIFIED:
		return ErrCaseNotOpened
	case s.IsErased():
		return ErrCaseErased
	case s.Closure.Closed && !acceptedWhenClosed:
		return refuse(ErrCaseClosed, "closed on %s", s.Closure.ClosedOn)
	}
	return nil
}

// sealedByClient checks that each given Sealed value (nil ones are absent
// and pass) uses the client's key, so that erasing that key erases them.
func (s State) sealedByClient(values ...*eventv1.Sealed) error {
	for _, v := range values {
		if v != nil && v.GetKeyId() != s.ClientKeyID {
			return refuse(ErrSealedWithOtherKey, "key %q, the client's is %q", v.GetKeyId(), s.ClientKeyID)
		}
	}
	return nil
}

// decided returns its events as a decision.
func decided(events ...proto.Message) ([]proto.Message, error) { return events, nil }
