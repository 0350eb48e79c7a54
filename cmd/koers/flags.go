package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"google.golang.org/protobuf/reflect/protoreflect"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// enumFlag is a flag whose value is one of a protobuf enum's values, given
// by its short name: lower case, without the enum's prefix, hyphens for
// underscores ("choice" for QUESTION_TYPE_CHOICE, "market-approach" for
// OUTPLACEMENT_PHASE_MARKET_APPROACH). The full name is accepted too.
type enumFlag[E interface {
	~int32
	protoreflect.Enum
}] struct {
	Value E
}

// Decode implements kong.MapperValue.
func (f *enumFlag[E]) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("value", &s); err != nil {
		return err
	}
	v, err := parseEnum[E](s)
	if err != nil {
		return err
	}
	f.Value = v
	return nil
}

func parseEnum[E interface {
	~int32
	protoreflect.Enum
}](s string) (E, error) {
	desc := E(0).Descriptor()
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	for _, candidate := range []string{enumPrefix(desc) + name, name} {
		if v := desc.Values().ByName(protoreflect.Name(candidate)); v != nil && v.Number() != 0 {
			return E(v.Number()), nil
		}
	}
	return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(enumNames(desc), ", "))
}

// enumPrefix is what every value name of desc starts with, taken from its
// zero value (QUESTION_TYPE_ of QUESTION_TYPE_UNSPECIFIED).
func enumPrefix(desc protoreflect.EnumDescriptor) string {
	return strings.TrimSuffix(string(desc.Values().ByNumber(0).Name()), "UNSPECIFIED")
}

// shortName is the name a flag takes for value number n of desc.
func shortName(desc protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	v := desc.Values().ByNumber(n)
	if v == nil {
		return fmt.Sprint(n)
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(string(v.Name()), enumPrefix(desc)), "_", "-"))
}

// short is shortName for an enum value.
func short(e protoreflect.Enum) string { return shortName(e.Descriptor(), e.Number()) }

// enumNames lists the short names of desc's values other than the zero one.
func enumNames(desc protoreflect.EnumDescriptor) []string {
	var names []string
	for i := 0; i < desc.Values().Len(); i++ {
		if n := desc.Values().Get(i).Number(); n != 0 {
			names = append(names, shortName(desc, n))
		}
	}
	return names
}

// enumVars are the help variables listing each enum's short names: ${Stage}
// in a help text becomes "opened, intake-completed, …".
func enumVars() kong.Vars {
	vars := kong.Vars{}
	enums := casev1.File_koers_case_v1_types_proto.Enums()
	for i := 0; i < enums.Len(); i++ {
		vars[string(enums.Get(i).Name())] = strings.Join(enumNames(enums.Get(i)), ", ")
	}
	return vars
}

// enumValues returns the values of a list of enum flags.
func enumValues[E interface {
	~int32
	protoreflect.Enum
}](flags []enumFlag[E]) []E {
	out := make([]E, len(flags))
	for i, f := range flags {
		out[i] = f.Value
	}
	return out
}

// dateFlag is a calendar day given as YYYY-MM-DD.
type dateFlag struct {
	Date *casev1.Date
}

// Decode implements kong.MapperValue.
func (f *dateFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("day", &s); err != nil {
		return err
	}
	d, err := parseDate(s)
	if err != nil {
		return err
	}
	f.Date = d
	return nil
}

func parseDate(s string) (*casev1.Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a day as YYYY-MM-DD", s)
	}
	return &casev1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}, nil
}

// orToday returns the day given, or today's in the local time zone.
func (f dateFlag) orToday() *casev1.Date {
	if f.Date != nil {
		return f.Date
	}
	y, m, d := time.Now().Date()
	return &casev1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// formatDate writes a day as YYYY-MM-DD; "-" when unset.
func formatDate(d *casev1.Date) string {
	if d == nil {
		return "-"
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}
