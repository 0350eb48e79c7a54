package casesvc

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/casework"
	"github.com/koers-io/koers/keyring"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// Limits of the personal plaintexts in requests. They keep every sealed
// value under casework.MaxSealedBytes, whatever the characters: the largest,
// ten goals of full length in four-byte characters, seals to about 60 KB.
const (
	// MaxNameLength caps a given or family name, in characters.
	MaxNameLength = 100
	// MaxEmailLength caps an e-mail address (RFC 5321's path limit).
	MaxEmailLength = 254
	// MaxPhoneLength caps a telephone number as written.
	MaxPhoneLength = 32
	// MaxAnswerLength caps each intake answer, in characters.
	MaxAnswerLength = 2000
	// MaxNoteLength caps a note, explanation, referral detail or summary.
	MaxNoteLength = 10_000
	// MaxGoals caps the goals of a development plan.
	MaxGoals = 10
	// MaxGoalDescriptionLength and MaxGoalActionsLength cap a goal's texts.
	MaxGoalDescriptionLength = 500
	MaxGoalActionsLength     = 1000
)

// sealer turns a personal plaintext into the Sealed value the domain
// carries.
type sealer interface {
	seal(msg proto.Message) *eventv1.Sealed
}

// shapeSealer gives values of the shape sealing would give, without a key:
// the command can be validated before the case (and with it the client's
// key) is loaded.
type shapeSealer struct{}

func (shapeSealer) seal(msg proto.Message) *eventv1.Sealed {
	return &eventv1.Sealed{
		KeyId:      "validating",
		Nonce:      make([]byte, 12),
		Ciphertext: make([]byte, proto.Size(msg)+16),
	}
}

// keySealer seals with the client's data key. The first failure sticks, so
// that a command is built whole or not at all.
type keySealer struct {
	keys  *keyring.Keyring
	keyID string
	err   error
}

func (k *keySealer) seal(msg proto.Message) *eventv1.Sealed {
	if k.err != nil {
		return nil
	}
	s, err := k.keys.Seal(k.keyID, msg)
	if err != nil {
		k.err = fmt.Errorf("seal personal data: %w", err)
		return nil
	}
	return s
}

// form collects what is wrong with a request's own fields, beyond what the
// domain command checks, and seals its personal parts.
type form struct {
	sealer sealer
	v      []casework.FieldViolation
}

func (f *form) add(field, format string, args ...any) {
	f.v = append(f.v, casework.FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// note seals a free text; an empty one is absent.
func (f *form) note(field, text string) *eventv1.Sealed {
	if text == "" {
		return nil
	}
	f.text(field, text, MaxNoteLength, true)
	return f.sealer.seal(&casev1.Note{Text: text})
}

// client seals the client's details; nil is absent, which the domain
// refuses.
func (f *form) client(field string, c *casev1.ClientDetails) *eventv1.Sealed {
	if c == nil {
		return nil
	}
	if c.GetGivenName() == "" && c.GetFamilyName() == "" {
		f.add(field+".family_name", "required, or given_name")
	}
	f.text(field+".given_name", c.GetGivenName(), MaxNameLength, false)
	f.text(field+".family_name", c.GetFamilyName(), MaxNameLength, false)
	f.text(field+".email", c.GetEmail(), MaxEmailLength, false)
	f.text(field+".phone", c.GetPhone(), MaxPhoneLength, false)
	return f.sealer.seal(c)
}

// answers seals the intake answers; nil is absent, which the domain refuses.
func (f *form) answers(field string, a *casev1.IntakeAnswers) *eventv1.Sealed {
	if a == nil {
		return nil
	}
	f.text(field+".reason_for_coming", a.GetReasonForComing(), MaxAnswerLength, true)
	f.text(field+".who_am_i", a.GetWhoAmI(), MaxAnswerLength, true)
	f.text(field+".what_do_i_want", a.GetWhatDoIWant(), MaxAnswerLength, true)
	f.text(field+".what_can_i_do", a.GetWhatCanIDo(), MaxAnswerLength, true)
	f.text(field+".where_do_i_find_it", a.GetWhereDoIFindIt(), MaxAnswerLength, true)
	f.text(field+".how_do_i_get_there", a.GetHowDoIGetThere(), MaxAnswerLength, true)
	return f.sealer.seal(a)
}

// goals seals a development plan's goals: 1 to MaxGoals, each described.
func (f *form) goals(field string, goals []*casev1.DevelopmentGoal) *eventv1.Sealed {
	switch n := len(goals); {
	case n == 0:
		f.add(field, "at least one goal required")
	case n > MaxGoals:
		f.add(field, "%d goals, over the limit of %d", n, MaxGoals)
	}
	for i, g := range goals {
		item := fmt.Sprintf("%s[%d]", field, i)
		if g.GetDescription() == "" {
			f.add(item+".description", "required")
		}
		f.text(item+".description", g.GetDescription(), MaxGoalDescriptionLength, true)
		f.text(item+".actions", g.GetActions(), MaxGoalActionsLength, true)
		if d := casework.DateFromProto(g.GetTargetOn()); g.GetTargetOn() != nil && !d.IsValid() {
			f.add(item+".target_on", "%s is not a calendar date", d)
		}
	}
	return f.sealer.seal(&casev1.DevelopmentGoals{Goals: goals})
}

// text checks a free text: valid UTF-8, at most max characters, and no
// control characters except, where lines are allowed, line breaks and tabs.
// The descriptions never quote the text: it is personal.
func (f *form) text(field, s string, max int, lines bool) {
	switch {
	case !utf8.ValidString(s):
		f.add(field, "not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		f.add(field, "longer than %d characters", max)
	default:
		for _, r := range s {
			if unicode.IsControl(r) && !(lines && (r == '\n' || r == '\r' || r == '\t')) {
				f.add(field, "must not contain control characters")
				return
			}
		}
	}
}
